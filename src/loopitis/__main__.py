from loopitis.cli import main

main()
