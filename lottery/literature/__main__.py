from lottery.literature import main

raise SystemExit(main())
