from echelon.cli.app import main

main()
