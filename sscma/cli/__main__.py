"""``python -m sscma.cli COMMAND ...``, the same as the ``sscma`` console command."""
from sscma.cli import main

main()
