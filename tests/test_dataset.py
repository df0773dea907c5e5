"""HDF5 data sets: schema, determinism, atomic writes, resume, and reading back."""

import h5py
import numpy as np
import pytest

from pydiff.datasets.hdf5 import FORMAT_VERSION, load, partial_path, summary
from pydiff.datasets.writer import generate
from pydiff.errors import ConfigError, DataFileError
from pydiff.problem import Problem, sample_sources, source_images
from pydiff.solvers import solve

from .cli import assert_clean_failure, pydiff

N = 23  # not a multiple of the batch sizes below, so the last batch is short


@pytest.fixture
def problem():
    return Problem(lattice=20, radius=3)


def write(path, problem, **kwargs):
    kwargs.setdefault("progress", False)
    return generate(path, N, problem, **kwargs)


def test_schema_and_contents(tmp_path, problem):
    path = write(tmp_path / "d.h5", problem, seed=4, batch_size=10)
    with h5py.File(path) as f:
        assert f.attrs["format"] == "pydiff.dataset" and f.attrs["format_version"] == FORMAT_VERSION
        assert f.attrs["n_complete"] == N and f.attrs["seed"] == 4 and f.attrs["backend"] == "spectral"
        assert f.attrs["lattice"] == 20 and f.attrs["source_model"] == "production"
        for name, shape, dtype in [
            ("inputs", (N, 20, 20), np.float32), ("fields", (N, 20, 20), np.float32),
            ("centers", (N, 2, 2), np.int16), ("values", (N, 2), np.float32), ("field_max", (N,), np.float32),
        ]:
            assert f[name].shape == shape and f[name].dtype == dtype, name
            assert f[name].chunks is not None
    data = load(path)
    draw = sample_sources(problem, N, seed=4)
    np.testing.assert_array_equal(data.centers, draw.centers)
    np.testing.assert_array_equal(data.inputs, source_images(problem, draw))
    fields, field_max = solve(data.inputs, problem)
    np.testing.assert_array_equal(data.fields, fields)
    np.testing.assert_array_equal(data.field_max, field_max)
    np.testing.assert_allclose(data.fields.max(axis=(1, 2)), 1.0)


def test_same_seed_same_data_whatever_the_batch_size(tmp_path, problem):
    a = load(write(tmp_path / "a.h5", problem, batch_size=5))
    b = load(write(tmp_path / "b.h5", problem, batch_size=23))
    for name in ("inputs", "centers", "values"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    np.testing.assert_allclose(a.fields, b.fields, rtol=0, atol=2e-7)
    c = load(write(tmp_path / "c.h5", problem, seed=1))
    assert not np.array_equal(a.centers, c.centers)


class Interrupt(KeyboardInterrupt):
    pass


def interrupt_after(batches):
    seen = []

    def progress(k):
        seen.append(k)
        if len(seen) == batches:
            raise Interrupt

    return progress


def test_interrupted_run_leaves_only_a_partial_file_and_resumes_identically(tmp_path, problem):
    out = tmp_path / "d.h5"
    with pytest.raises(Interrupt):
        write(out, problem, batch_size=5, progress=interrupt_after(2))
    assert not out.exists() and partial_path(out).exists()
    with h5py.File(partial_path(out)) as f:
        assert f.attrs["n_complete"] == 10
    with pytest.raises(DataFileError, match="no such file.*--resume"):
        load(out)
    with pytest.raises(ConfigError, match="interrupted run.*--resume"):
        write(out, problem, batch_size=5)
    write(out, problem, batch_size=5, resume=True)
    assert out.exists() and not partial_path(out).exists()
    whole = load(write(tmp_path / "whole.h5", problem, batch_size=5))
    resumed = load(out)
    for name in ("inputs", "fields", "centers", "values", "field_max"):
        np.testing.assert_array_equal(getattr(resumed, name), getattr(whole, name))


def test_resume_with_other_parameters_is_refused(tmp_path, problem):
    out = tmp_path / "d.h5"
    with pytest.raises(Interrupt):
        write(out, problem, batch_size=5, progress=interrupt_after(1))
    with pytest.raises(ConfigError, match="started with seed=0, not 3"):
        write(out, problem, batch_size=5, resume=True, seed=3)


def test_resume_of_a_complete_file_is_a_no_op(tmp_path, problem):
    out = write(tmp_path / "d.h5", problem)
    before = out.stat().st_mtime_ns
    write(out, problem, resume=True)
    assert out.stat().st_mtime_ns == before


def test_existing_file_needs_overwrite_and_survives_an_interrupted_overwrite(tmp_path, problem):
    out = write(tmp_path / "d.h5", problem, seed=0)
    original = load(out).inputs
    with pytest.raises(ConfigError, match="exists; pass --overwrite"):
        write(out, problem, seed=1)
    with pytest.raises(Interrupt):
        write(out, problem, seed=1, overwrite=True, batch_size=5, progress=interrupt_after(1))
    np.testing.assert_array_equal(load(out).inputs, original)  # untouched
    write(out, problem, seed=1, overwrite=True)
    assert load(out).attrs["seed"] == 1 and not partial_path(out).exists()


@pytest.mark.parametrize(
    "kwargs, message",
    [({"n": 0}, "--n must be a positive"), ({"batch_size": 0}, "--batch-size"), ({"backend": "nope"}, "unknown backend")],
)
def test_bad_arguments_leave_no_file(tmp_path, problem, kwargs, message):
    args = {"n": N, "progress": False, **kwargs}
    with pytest.raises(ConfigError, match=message):
        generate(tmp_path / "d.h5", problem=problem, **args)
    assert list(tmp_path.iterdir()) == []


def test_missing_directory(tmp_path, problem):
    with pytest.raises(ConfigError, match="does not exist"):
        write(tmp_path / "nowhere" / "d.h5", problem)


def test_lazy_load_reads_on_demand_and_is_a_map_style_dataset(tmp_path, problem):
    path = write(tmp_path / "d.h5", problem)
    eager = load(path)
    with load(path, lazy=True) as lazy:
        assert isinstance(lazy.inputs, h5py.Dataset)
        assert len(lazy) == N
        x, y = lazy[7]
        assert x.shape == (1, 20, 20) and y.dtype == np.float32
        np.testing.assert_array_equal(y[0], eager.fields[7])


def test_clamped_data_set(tmp_path):
    problem = Problem(lattice=16, radius=2, source_model="clamped")
    data = load(generate(tmp_path / "c.h5", 4, problem, backend="direct", progress=False))
    held = data.inputs > 0
    np.testing.assert_allclose(data.fields[held], data.inputs[held], rtol=1e-6)


def test_truncated_foreign_and_wrong_version_files(tmp_path, problem):
    good = write(tmp_path / "good.h5", problem)
    truncated = tmp_path / "truncated.h5"
    truncated.write_bytes(good.read_bytes()[:3000])
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as f:
        f["x"] = np.zeros(3)
    old = tmp_path / "old.h5"
    old.write_bytes(good.read_bytes())
    with h5py.File(old, "r+") as f:
        f.attrs["format_version"] = 99
    text = tmp_path / "text.h5"
    text.write_text("hello")
    for path, message in [
        (truncated, "truncated|cannot be opened"), (foreign, "not a pydiff data set"),
        (old, "format version 99"), (text, "not an HDF5 file"), (tmp_path / "none.h5", "no such file"),
    ]:
        with pytest.raises(DataFileError, match=message):
            load(path)


def test_summary_ranges(tmp_path, problem):
    attrs, rows = summary(write(tmp_path / "d.h5", problem))
    by_name = {row["array"]: row for row in rows}
    assert by_name["fields"]["max"] == pytest.approx(1.0)
    assert by_name["centers"]["min"] >= 3 and by_name["centers"]["max"] <= 17
    assert attrs["n_complete"] == N


def test_inputs_are_compressed_per_sample_and_fields_are_not(tmp_path):
    import h5py

    path = generate(tmp_path / "d.h5", 12, Problem(lattice=24, radius=3), progress=False)
    with h5py.File(path) as f:  # plain h5py reads it: the filter is HDF5's own gzip
        assert f["inputs"].compression == "gzip" and f["inputs"].chunks == (1, 24, 24)
        assert f["fields"].compression is None and f["fields"].chunks == (1, 24, 24)
        assert f["inputs"].id.get_storage_size() < f["inputs"].size * 4 / 5
    data = load(path)
    again = source_images(Problem(lattice=24, radius=3), sample_sources(Problem(lattice=24, radius=3), 12, 0))
    assert np.array_equal(data.inputs, again)  # lossless


def test_files_store_the_source_count_of_each_sample(tmp_path):
    problem = Problem(lattice=24, radius=3, n_sources=3, min_sources=1, setup="paper2024")
    data = load(generate(tmp_path / "d.h5", 7, problem, progress=False))
    assert data.attrs["format_version"] == 3 and data.problem == problem
    assert data.source_count.tolist() == [1, 2, 3, 1, 2, 3, 1]
    assert np.all(data.values[0, 1:] == 0) and np.all(data.values[2] > 0)
    assert data.diffusivity is None and data.source_shapes is None  # the papers' problem: nothing more


def test_a_version_2_file_still_reads_and_is_reused_as_it_is(tmp_path):
    # What pydiff 0.1's second format wrote: no attributes of the varied family.
    import h5py

    problem = Problem(lattice=24, radius=3, n_sources=3, min_sources=1, setup="paper2024")
    path = generate(tmp_path / "d.h5", 7, problem, seed=2, progress=False)
    with h5py.File(path, "r+") as f:
        for key in ("diffusivity", "contrast", "inclusions", "correlation_length", "sources", "boundary", "target"):
            del f.attrs[key]
        f.attrs["format_version"] = 2
    before = path.read_bytes()
    old = load(path)
    assert old.problem == problem and old.problem.target == "t_max" and old.diffusivity is None
    assert generate(path, 7, problem, seed=2, resume=True, progress=False) == path  # complete: reused
    assert path.read_bytes() == before


def downgrade_to_version_1(path, complete=True):
    """What pydiff 0.1 wrote: no source_count, setup or min_sources."""
    import h5py

    with h5py.File(path, "r+") as f:
        del f["source_count"]
        del f.attrs["setup"], f.attrs["min_sources"]
        f.attrs["format_version"] = 1
        if not complete:
            f.attrs["n_complete"] = 2


def test_version_1_files_are_still_read_and_reused(tmp_path):
    path = generate(tmp_path / "old.h5", 6, Problem(lattice=24, radius=3), progress=False)
    before = load(path)
    downgrade_to_version_1(path)
    old = load(path)
    assert old.attrs["format_version"] == 1 and old.problem == Problem(lattice=24, radius=3)
    assert old.source_count.tolist() == [2] * 6
    np.testing.assert_array_equal(old.fields, before.fields)
    # A cache of the same parameters is accepted as it is (reproduce's data cache).
    assert generate(path, 6, Problem(lattice=24, radius=3), progress=False, resume=True) == path
    with load(path, lazy=True) as lazy:
        assert lazy.source_count.tolist() == [2] * 6


def test_a_partial_version_1_file_is_not_continued(tmp_path):
    path = generate(tmp_path / "old.h5", 6, Problem(lattice=24, radius=3), progress=False)
    downgrade_to_version_1(path, complete=False)
    path.rename(partial_path(tmp_path / "new.h5"))
    with pytest.raises(ConfigError, match="older pydiff \\(format version 1\\)"):
        generate(tmp_path / "new.h5", 6, Problem(lattice=24, radius=3), progress=False, resume=True)


# --- Shards and merge ---------------------------------------------------------------------------


SHARD_PROBLEM = Problem(lattice=24, radius=3, n_sources=4, min_sources=1, setup="paper2024")


def make_shards(directory, k, n=10, seed=5):
    return [generate(directory / f"part{i}.h5", n, SHARD_PROBLEM, seed=seed, shard=(i, k), progress=False)
            for i in range(k)]


def test_shards_merge_into_the_unsharded_data_set_whatever_their_number(tmp_path, monkeypatch):
    from pydiff.datasets.shards import merge

    whole = load(generate(tmp_path / "whole.h5", 10, SHARD_PROBLEM, seed=5, progress=False))
    for k in (3, 4):
        directory = tmp_path / f"k{k}"
        directory.mkdir()
        parts = make_shards(directory, k)
        assert [len(load(p)) for p in parts] == [(i + 1) * 10 // k - i * 10 // k for i in range(k)]
        merged_path = merge(parts[::-1], directory / "merged.h5")  # any order
        monkeypatch.chdir(tmp_path)  # the parts are found beside the merged file, not via the cwd
        merged = load(merged_path)
        assert len(merged) == 10 and merged.attrs["n_complete"] == 10 and "shard_index" not in merged.attrs
        for name in ("inputs", "fields", "centers", "values", "field_max", "source_count"):
            np.testing.assert_array_equal(getattr(merged, name), getattr(whole, name), err_msg=name)
        with load(merged_path, lazy=True) as lazy:
            np.testing.assert_array_equal(lazy[7][1][0], whole.fields[7])


def test_a_merged_file_with_a_part_moved_away_is_refused_by_every_reader(tmp_path):
    # HDF5 reads a missing part of a virtual data set as its fill value, zeros: without a check,
    # half the samples would load, print and train as empty images.
    from pydiff.datasets.shards import merge
    from pydiff.errors import DataFileError

    parts = make_shards(tmp_path, 2)
    merged = merge(parts, tmp_path / "merged.h5")
    parts[1].rename(tmp_path / "elsewhere.h5")
    for read in (load, lambda p: load(p, lazy=True)):
        with pytest.raises(DataFileError, match="part1.h5, a part of this merged data set, is missing"):
            read(merged)
    assert_clean_failure(pydiff("info", merged), 1, "part1.h5, a part of this merged data set, is missing")
    result = pydiff("train", "--model", 9, "--preset", "smoke", "--data", merged, "--out", tmp_path / "run")
    assert_clean_failure(result, 2, "part1.h5, a part of this merged data set, is missing")
    assert not (tmp_path / "run").exists()
    (tmp_path / "elsewhere.h5").rename(parts[1])
    assert len(load(merged)) == 10


def test_merge_refuses_to_write_over_one_of_its_parts(tmp_path):
    from pydiff.datasets.shards import merge

    parts = make_shards(tmp_path, 2)
    before = parts[0].read_bytes()
    with pytest.raises(ConfigError, match="is one of the parts"):
        merge(parts, parts[0], overwrite=True)
    assert parts[0].read_bytes() == before


def test_merge_refuses_parts_that_do_not_fit(tmp_path):
    from pydiff.datasets.shards import merge
    from pydiff.errors import DataFileError

    parts = make_shards(tmp_path, 3)
    with pytest.raises(DataFileError, match="samples 3..5 missing|leaves samples 3..5 missing"):
        merge([parts[0], parts[2]], tmp_path / "m.h5")
    with pytest.raises(DataFileError, match="missing"):
        merge(parts[:2], tmp_path / "m.h5")
    other = generate(tmp_path / "other.h5", 10, SHARD_PROBLEM, seed=6, shard=(2, 3), progress=False)
    with pytest.raises(DataFileError, match="another data set \\(seed differ"):
        merge([parts[0], parts[1], other], tmp_path / "m.h5")
    plain = generate(tmp_path / "plain.h5", 4, SHARD_PROBLEM, progress=False)
    with pytest.raises(DataFileError, match="not a shard"):
        merge([plain], tmp_path / "m.h5")
    assert not (tmp_path / "m.h5").exists()
