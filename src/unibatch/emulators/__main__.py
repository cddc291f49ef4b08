"""``python -m unibatch.emulators``: serve every provider emulator (see ``server.main``)."""

from .server import main

main()
