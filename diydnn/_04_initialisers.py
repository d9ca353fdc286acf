# %% [markdown]
# # 04 — Initialisers
#
# (Draft: the code of this chapter; derivations and figures follow.)

# %%
"""Chapter 04: weight initialisers RandomNormal, HeNormal, GlorotUniform."""
import numpy as np


# %%
class Initialiser:
    """Draws a weight matrix of shape (fan_in, fan_out) from the generator it is given."""

    name = "initialiser"

    def __call__(self, fan_in, fan_out, rng):
        raise NotImplementedError

    def get_config(self):
        return {"name": self.name}

    def __repr__(self):
        return f"{type(self).__name__}()"


class RandomNormal(Initialiser):
    """N(0, stddev^2); with stddev=1 this is the original diy-dnn's "random" initialiser."""

    name = "random"

    def __init__(self, stddev=1.0):
        if not stddev > 0:
            raise ValueError(f"RandomNormal: stddev must be positive, got {stddev!r}")
        self.stddev = float(stddev)

    def __call__(self, fan_in, fan_out, rng):
        return rng.normal(0.0, self.stddev, size=(fan_in, fan_out))

    def get_config(self):
        return {"name": self.name, "stddev": self.stddev}


class HeNormal(Initialiser):
    """N(0, 2/fan_in): keeps the variance of ReLU activations constant from layer to layer."""

    name = "he"

    def __call__(self, fan_in, fan_out, rng):
        return rng.normal(0.0, np.sqrt(2.0 / fan_in), size=(fan_in, fan_out))


class GlorotUniform(Initialiser):
    """U(-l, l) with l = sqrt(6/(fan_in + fan_out)): variance 2/(fan_in + fan_out)."""

    name = "glorot"

    def __call__(self, fan_in, fan_out, rng):
        limit = np.sqrt(6.0 / (fan_in + fan_out))
        return rng.uniform(-limit, limit, size=(fan_in, fan_out))


INITIALISERS = {
    "random": RandomNormal, "random_normal": RandomNormal,
    "he": HeNormal, "he_normal": HeNormal,
    "glorot": GlorotUniform, "glorot_uniform": GlorotUniform, "xavier": GlorotUniform,
}


def get_initialiser(spec):
    """An initialiser from a name ("he"), a config dict ({"name": "random", "stddev": 0.1}) or an object."""
    if isinstance(spec, Initialiser) or (callable(spec) and not isinstance(spec, (str, dict, type))):
        return spec
    if isinstance(spec, str):
        spec = {"name": spec}
    if isinstance(spec, dict):
        kwargs = dict(spec)
        name = kwargs.pop("name", None)
        if name not in INITIALISERS:
            raise ValueError(f"unknown initialiser {name!r}; known: {sorted(INITIALISERS)}")
        try:
            return INITIALISERS[name](**kwargs)
        except TypeError as e:
            raise ValueError(f"initialiser {name!r}: bad arguments {kwargs}: {e}") from None
    raise ValueError(f"initialiser must be a name, a config dict or an Initialiser, got {spec!r}")
