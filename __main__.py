"""The linked-apps Pulumi program: stack config -> topology -> rules -> components -> outputs.

`pulumi preview/up` runs this file; so does `linked-apps plan` (under the SDK's mock runtime).
"""

from components.program import run

run()
