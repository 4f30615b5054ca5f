from lettergen.interfaces.cli import main

if __name__ == "__main__":  # a spawned worker process imports this module; it must not run the CLI again
    main()
