from unibatch.cli import main

main()
