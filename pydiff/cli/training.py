"""Commands that train and describe networks: train, model."""

from __future__ import annotations

import click

from .app import CONTEXT, RESUME, main, reports_errors
from .options import make_config, training_options


@main.command(context_settings=CONTEXT)
@click.option("--model", "model_id", type=int, help="Table 2 model id (1-14); needed for --network surrogate.")
@click.option("--data", type=click.Path(dir_okay=False), required=True,
              help="HDF5 data set from `pydiff generate` (100x100 for the 2021 surrogate, any lattice for the 2024 networks).")
@click.option("--out", type=click.Path(file_okay=False), required=True, help="Run directory to create.")
@training_options
@click.option("--resume", is_flag=True, help="Continue the interrupted run in --out.")
@reports_errors(data_error_code=2, continued=RESUME)
def train(model_id, data, out, resume, **options):
    """Train a Table 2 model on a data set; checkpoints and a per-epoch log go to --out.

    Every epoch appends to log.csv; every --checkpoint-every epochs, on SIGINT/SIGTERM and at
    the end, last.pt (for --resume) and model.safetensors (lowest held-out loss) are written.  Under
    `torchrun --nproc-per-node=K -m pydiff train ...` the K ranks share each batch.
    """
    from ..errors import ConfigError
    from ..registry import preset as preset_values
    from ..training.distributed import launched_rank, teardown
    from ..training.run import train as run

    network = options.get("network") or preset_values(options["preset"]).get("network", "surrogate")
    if model_id is None and network == "surrogate":
        raise ConfigError("give --model N (a Table 2 row) for the 2021 surrogate, or --network encdec/unet/fno")
    config = make_config(model_id, data, **options)
    try:
        result = run(config, out, resume=resume)
    finally:
        teardown()
    if launched_rank() == 0:
        what = f"model {model_id}" if model_id is not None else config.network
        click.echo(f"trained {what} into {result.run_dir}: best epoch {result.best_epoch} "
                   f"(held-out loss {result.best_val_loss:.4g}), {result.rollbacks} roll-backs, {result.seconds:.0f} s")


@main.command(context_settings=CONTEXT)
@click.option("--id", "--model", "model_id", type=int, default=9, show_default=True, help="Table 2 model id (1-14).")
@click.option("--width", type=float, default=1.0, show_default=True, help="Channel multiplier.")
@reports_errors()
def model(model_id, width):
    """Print Table 1 from the live network of a Table 2 model: layers, activations, shapes, parameters."""
    import pandas as pd

    from ..nn.surrogate2021 import Surrogate, describe
    from ..registry import paper_model

    row = paper_model(model_id)
    net = Surrogate(row.p1, row.p2, row.dropout, width)
    table = pd.DataFrame(describe(net))
    drops = " ".join(f"D{i + 1}={'-' if d is None else f'{d:g}'}" for i, d in enumerate(row.dropout))
    click.echo(f"model {model_id}: p1={row.p1:g} p2={row.p2:g} {drops} w={row.w:g} loss={row.loss} width={width:g}")
    with pd.option_context("display.max_rows", None, "display.width", 120):
        click.echo(table.to_string(index=False))
    click.echo(f"total parameters: {sum(p.numel() for p in net.parameters()):,}")


@main.command(context_settings=CONTEXT)
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.argument("out", type=click.Path(file_okay=False))
@click.option("--overwrite", is_flag=True, help="Replace an existing OUT.")
@reports_errors(data_error_code=2)
def export(run_dir, out, overwrite):
    """Write an evaluated run's best model as a shared model: OUT/config.json, model.safetensors
    and metrics.json (load it with pydiff.load_model(OUT) or `pydiff predict OUT ...`).

    \b
      pydiff export runs/quick/model09-seed0 my-model9
    """
    from ..training.pretrained import export_model

    path = export_model(run_dir, out, overwrite)
    click.echo(f"wrote {path} (config.json, model.safetensors, metrics.json)")
