"""python3 scripts/lib/mp3c_local stack|with-servers|harness-ctl|free-ports [ARGS...]"""
import os, sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # scripts/lib: the package's parent

from mp3c_local import harness, stack, table  # noqa: E402


def free_ports(argv):
    for name, port in table.free_stack_ports().items():
        print(f"{name}={port}")
    return 0


COMMANDS = {"stack": stack.main, "with-servers": harness.with_servers, "harness-ctl": harness.harness_ctl,
            "free-ports": free_ports}
if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
    sys.exit(__doc__)
sys.exit(COMMANDS[sys.argv[1]](sys.argv[2:]))
