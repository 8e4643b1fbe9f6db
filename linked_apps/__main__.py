"""`python -m linked_apps`: the same as the `linked-apps` command."""

from .cli import main

main(prog_name="linked-apps")
