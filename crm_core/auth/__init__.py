"""Sign-in, roles and rights. `Actor` is the contract every changing service takes."""
from crm_core.auth.actor import Actor

__all__ = ["Actor"]
