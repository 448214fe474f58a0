"""User-facing errors: each one is a single line that names the problem; the CLI exits with status 2."""


class TisRayError(Exception):
    """A mistake in the user's input (spec, data file, path, address) rather than a bug in tis_ray."""


class DataError(TisRayError):
    """A data file is missing, empty or malformed; the message names the file and line."""


class SpecError(TisRayError):
    """A sweep spec field is invalid; the message names the field."""


class SamplingError(TisRayError):
    """A sampler cannot produce the subset it was asked for."""
