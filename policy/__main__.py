"""The linked-apps CrossGuard pack (`pulumi preview --policy-pack policy/`).

It only builds the pack, which serves forever: the policies live in `policies.py`, importable by tests and by
other packs. The engine runs this directory with `runpy`, which puts it first on sys.path.
"""

from policies import POLICIES
from pulumi_policy import PolicyPack

PolicyPack("linked-apps", policies=POLICIES)
