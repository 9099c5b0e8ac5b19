from tallinn.cli import main

main()
