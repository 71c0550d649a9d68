"""Redis key names of the game, with their hash tags.

A shopper's game state lives under the geo package's shopper tag `{s:<id>}`, next to their
location state, so the catch script could read both on one slot. A campaign's game
configuration, leaderboards and reward ledger live under the promotions tag `{c:<id>}`.
"""

CAMPAIGNS = "game:campaigns"  # set: campaigns that have a game configuration
VERSION = "game:version"  # counter bumped by every configuration change (process caches)


def config(cid: str) -> str:
    """String: the campaign's game configuration JSON."""
    return f"game:{{c:{cid}}}:config"


def board(cid: str, scope: str, period: str) -> str:
    """Sorted set: shopper -> points; scope 'campaign' or 'city:<name>', period 'all' or a day."""
    return f"game:{{c:{cid}}}:lb:{scope}:{period}"


def rewarded(cid: str, hour: int) -> str:
    """Hash: catch id -> points of spawns born in one hour (rewards are applied once per
    catch; a catch is only possible while its spawn lives, so the hash expires soon after)."""
    return f"game:{{c:{cid}}}:rewarded:{hour}"


REFERENCE_KEY = "game:refkey"  # string: the references' HMAC key when none is configured


def shopper(shopper_id: str) -> str:
    """Return the hash-tagged prefix of one shopper's game keys (the geo shopper tag)."""
    return f"game:{{s:{shopper_id}}}"


def state(shopper_id: str) -> str:
    """Hash: last attempt, catches per day, strikes and restrictions (no place)."""
    return f"{shopper(shopper_id)}:st"


def last_catch(shopper_id: str) -> str:
    """Hash: time, lat, lon and city of the last catch (impossible-travel check); expires
    with the raw fixes (the fix retention) and goes with the location consent."""
    return f"{shopper(shopper_id)}:lc"


def attempts(shopper_id: str) -> str:
    """Hash: spawn reference -> 'n' attempts so far, 'caught' or 'fled' (expires with the
    spawns). Keyed by the opaque reference, never the spawn id, which names a place."""
    return f"{shopper(shopper_id)}:att"


def boards(shopper_id: str) -> str:
    """Set: '<campaign>|<city>|<day>' of the boards the shopper scored on (for erasure)."""
    return f"{shopper(shopper_id)}:boards"


def collection(shopper_id: str) -> str:
    """Hash: species id -> how many caught ('<campaign>|<species>')."""
    return f"{shopper(shopper_id)}:col"


def recent(shopper_id: str) -> str:
    """Sorted set: catch attempts (opaque) of the last ten minutes (inhuman-rate detection)."""
    return f"{shopper(shopper_id)}:recent"


def strikes(shopper_id: str) -> str:
    """List: every incident with its evidence (JSON, no place), oldest first, capped."""
    return f"{shopper(shopper_id)}:strikes"
