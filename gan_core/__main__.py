import sys

from .process import set_wait_policy

set_wait_policy()  # before anything imports torch: libgomp reads OMP_WAIT_POLICY once, at load

from .cli import main  # noqa: E402

sys.exit(main())
