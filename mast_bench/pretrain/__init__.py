"""Pretraining engine: ``run.pretrain`` (set-up), ``loop`` (steps, logging, stops), ``data`` (two-view
loader), ``lars`` / ``optimizer`` / ``schedule`` (VICReg's optimisation), ``checkpoint`` / ``resume`` /
``rng`` (files and exact resumption), ``distributed`` / ``device`` (torchrun, mixed precision)."""
