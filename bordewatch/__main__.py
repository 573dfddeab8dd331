"""``python -m bordewatch`` runs the command-line interface."""

from bordewatch.cli.main import main

if __name__ == "__main__":
    main()
