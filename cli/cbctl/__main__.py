"""Entry point of the ``cbctl`` console script and of ``python -m cbctl``."""

from cbctl._app import app


def main() -> None:
    """Run cbctl with the process's command line arguments."""
    app(prog_name="cbctl")


if __name__ == "__main__":
    main()
