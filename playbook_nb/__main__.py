from playbook_nb.cli import main

main()
