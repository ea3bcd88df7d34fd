"""Where a grid's cells run: a launcher is a strategy for running packs of cells, all through
``lottery.cells.run_group``. ``local``: this machine (``lottery.launchers.local``); ``slurm``: a SLURM cluster
through submitit (``lottery.launchers.slurm``); ``--status`` reads either (``lottery.launchers.status``)."""
