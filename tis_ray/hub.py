"""Is every Hugging Face hub model a sweep names there, before anything waits for it? A model in the local
cache is; offline (HF_HUB_OFFLINE), one that is not ends the sweep at once, with the fix; online, one short
request to the hub says whether it exists (transformers would retry for minutes where the hub is unreachable).
"""

from __future__ import annotations

import os

from tis_ray.errors import SpecError

HUB_TIMEOUT_S = 10.0  # the one request to the hub: no retries
OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
BUILT_IN = ("tiny-albert",)  # built by tis_ray, no files


def hub_models(spec) -> dict[str, str]:
    """Return {spec field: hub id} of every model and tokenizer `spec` reads from the hub (not local folders,
    not tiny-albert), the grid's model.name axis included."""
    from tis_ray.spec import looks_like_path

    named = [("model.name", spec.model.name), ("model.tokenizer", spec.model.tokenizer),
             ("clustering.embedding_model", spec.clustering.embedding_model),
             *(("grid.model.name", name) for name in spec.grid.extra.get("model.name", []))]
    return {field: name for field, name in named
            if isinstance(name, str) and name and name not in BUILT_IN and not looks_like_path(name)}


def offline() -> bool:
    """True when the Hugging Face libraries are told to stay off the network."""
    return any(os.environ.get(v, "").strip().lower() in ("1", "true", "yes", "on") for v in OFFLINE_VARIABLES)


def is_cached(name: str) -> bool:
    """True when the local Hugging Face cache holds the model's config.json."""
    from huggingface_hub import try_to_load_from_cache

    return isinstance(try_to_load_from_cache(name, "config.json"), str)


def check_hub_models(spec, ask_hub: bool = True, on_cluster: bool = False) -> None:
    """Raise SpecError naming the first hub model of `spec` that cannot be had: not in the local cache while
    offline, or (with `ask_hub`, one request of at most HUB_TIMEOUT_S) unknown to the hub or with the hub
    unreachable. A dry run passes ask_hub=False: it reaches no network. `on_cluster`: the cluster's nodes load
    the models, so this machine's cache and an offline setting here say nothing about them."""
    for field, name in hub_models(spec).items():
        if is_cached(name):
            continue
        if offline() and on_cluster:
            continue
        if offline():
            raise SpecError(f"{field}: model {name!r} is not in the local Hugging Face cache and the hub is off "
                            f"(HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE); download it on a machine with network "
                            f"(huggingface-cli download {name}) into this cache, or give a local folder")
        if ask_hub:
            _ask_hub(field, name)


def _ask_hub(field: str, name: str) -> None:
    from huggingface_hub import HfApi
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

    try:
        HfApi().model_info(name, timeout=HUB_TIMEOUT_S)
    except GatedRepoError:
        raise SpecError(f"{field}: model {name!r} is gated on the Hugging Face hub: accept its terms on its page "
                        "and log in (huggingface-cli login)") from None
    except RepositoryNotFoundError:
        raise SpecError(f"{field}: no model {name!r} on the Hugging Face hub (a typo? a private model needs "
                        f"huggingface-cli login; a local folder needs a path such as ./{name})") from None
    except Exception as exc:  # noqa: BLE001 - the hub client's HTTP library (requests, httpx) has its own errors
        raise SpecError(f"{field}: model {name!r} is not in the local Hugging Face cache and the hub cannot be "
                        f"reached ({type(exc).__name__}); download it on a machine with network (huggingface-cli "
                        f"download {name}) or give a local folder") from None
