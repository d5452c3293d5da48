"""``tinynet train``: its options become a tinynet.experiment.Recipe (with --resume, the checkpoint's), and the
experiment runs it; and what to say when a training is cut short."""

from __future__ import annotations

import dataclasses

from tinynet.experiment import Recipe, output_folder, resume_recipe, run_seeds


def recipe_from(args):
    """The Recipe of train's parsed options (its fields are the options' names)."""
    return Recipe(**{f.name: getattr(args, f.name) for f in dataclasses.fields(Recipe)})


def cmd_train(args):
    """Train one model per seed (--seed, or --seeds 0,1,2): a report and metrics.json each, and a summary.

    With --resume, the options written beside it (args.given, which main sets) must agree with the checkpoint's;
    called without main, the options that differ from the defaults count as written."""
    recipe = recipe_from(args)
    if recipe.resume:
        recipe = resume_recipe(recipe, getattr(args, "given", None), args.seeds)
    run_seeds(recipe, args.seeds or [recipe.seed])
    return 0


def resume_hint(args, started):
    """After Ctrl-C (or a closed output pipe) in train: the checkpoint this run wrote last, and the command that
    goes on from it."""
    out = output_folder(recipe_from(args))
    written = [p for p in (out / "last.safetensors", *out.glob("seed*/last.safetensors"))
               if p.is_file() and p.stat().st_mtime >= started - 2]  # this run's (2 s: coarse file clocks), not older
    if not written:
        return " (before the end of the first epoch: no checkpoint to resume)"
    newest = max(written, key=lambda p: p.stat().st_mtime)
    return f"; to go on from its last finished epoch: tinynet train --resume {newest}"
