"""``tinynet train``: its options become a tinynet.experiment.Recipe (with --resume, the checkpoint's), and the
experiment runs it; and what to say when a training is cut short."""

from __future__ import annotations

import dataclasses

from tinynet.experiment import (
    Recipe,
    check,
    checkpoints_written_since,
    nothing_left_to_train,
    output_folder,
    report_is_current,
    resume_recipe,
    run_checked,
)


def recipe_from(args):
    """The Recipe of train's parsed options (its fields are the options' names; out_chosen is check()'s own)."""
    return Recipe(**{f.name: getattr(args, f.name) for f in dataclasses.fields(Recipe) if hasattr(args, f.name)})


def cmd_train(args):
    """Train one model per seed (--seed, or --seeds 0,1,2): a report and metrics.json each, and a summary.

    With --resume, the options written beside it (args.given, which main sets) must agree with the checkpoint's;
    called without main, the options that differ from the defaults count as written. A checkpoint with no epoch
    left to train whose report is written already: one line says so, and nothing is done. args.out becomes the
    folder the run writes into (runs/MODEL-2, say), where resume_hint looks after an interruption."""
    recipe = recipe_from(args)
    if recipe.resume:
        recipe = resume_recipe(recipe, getattr(args, "given", None), args.seeds)
        left = nothing_left_to_train(recipe)
        if left and report_is_current(recipe):
            print(f"{left} (its report, {output_folder(recipe) / 'metrics.json'}, is up to date)")
            return 0
    recipe = check(recipe)
    args.out = recipe.out

    def taken(folder):  # another run may have taken check()'s folder meanwhile: this run writes into the next one
        args.out = str(folder)

    run_checked(recipe, args.seeds or [recipe.seed], on_folder=taken)
    return 0


def resume_hint(args, started):
    """After Ctrl-C (or a closed output pipe) in train: the checkpoint this run wrote last, and the command that
    goes on from it."""
    written = checkpoints_written_since(output_folder(recipe_from(args)), started)  # this run's, not an older one's
    if not written and args.resume:  # interrupted before its first new epoch ended: the checkpoint it went on from
        epochs = f" --epochs {args.epochs}" if "epochs" in getattr(args, "given", ()) else ""
        return f"; to go on: tinynet train --resume {args.resume}{epochs}"
    if not written:
        return " (before the end of the first epoch: no checkpoint to resume)"
    return f"; to go on from its last finished epoch: tinynet train --resume {written[0]}"
