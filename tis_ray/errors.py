"""User-facing errors: each one is a single line that names the problem; the CLI exits with status 2."""


class TisRayError(Exception):
    """A mistake in the user's input (spec, data file, path, address) rather than a bug in tis_ray."""


class DataError(TisRayError):
    """A data file is missing, empty or malformed; the message names the file and line."""


class SpecError(TisRayError):
    """A sweep spec field is invalid; the message names the field."""


class SamplingError(TisRayError):
    """A sampler cannot produce the subset it was asked for."""


def did_you_mean(word: str, known) -> str:
    """Return "; did you mean 'x'?" naming the entry of `known` closest to `word` (difflib), or "" when none is
    close enough to be a likely typo."""
    import difflib

    close = difflib.get_close_matches(str(word), [str(k) for k in known], n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""
