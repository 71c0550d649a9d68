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


def rewarded(cid: str) -> str:
    """Hash: catch id -> points (rewards are applied once per catch)."""
    return f"game:{{c:{cid}}}:rewarded"


def shopper(shopper_id: str) -> str:
    """Return the hash-tagged prefix of one shopper's game keys (the geo shopper tag)."""
    return f"game:{{s:{shopper_id}}}"


def state(shopper_id: str) -> str:
    """Hash: last attempt, catches per day, last catch place/time, strikes and restrictions."""
    return f"{shopper(shopper_id)}:st"


def attempts(shopper_id: str) -> str:
    """Hash: spawn id -> 'n' attempts so far, 'caught' or 'fled' (expires with the spawns)."""
    return f"{shopper(shopper_id)}:att"


def collection(shopper_id: str) -> str:
    """Hash: species id -> how many caught ('<campaign>|<species>')."""
    return f"{shopper(shopper_id)}:col"


def recent(shopper_id: str) -> str:
    """Sorted set: catch attempts of the last ten minutes (inhuman-rate detection)."""
    return f"{shopper(shopper_id)}:recent"


def strikes(shopper_id: str) -> str:
    """List: strike records with their evidence (JSON), oldest first."""
    return f"{shopper(shopper_id)}:strikes"

