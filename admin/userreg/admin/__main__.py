"""`python -m userreg.admin …` is the same as `userreg …`."""

import sys

from userreg.admin.cli import main

sys.exit(main())
