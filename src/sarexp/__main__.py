"""`python -m sarexp` runs the Hydra entry point."""

from sarexp.run import main

if __name__ == "__main__":
    main()
