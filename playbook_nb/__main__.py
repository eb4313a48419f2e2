from playbook_nb.faces.cli import main

main()
