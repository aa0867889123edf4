from echelon.channels.simulator.run import main

main()
