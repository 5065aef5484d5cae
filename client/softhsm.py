"""SoftHSM2 tokens for tests, the demo and a member trying the HSM path on one machine.

SoftHSM2 (Debian's ``softhsm2``) reads its configuration from the file named by
``SOFTHSM2_CONF``; :func:`init_softhsm_token` writes one with a token directory of its own and
initialises a token there with ``softhsm2-util``. A production HSM needs none of this: point
:class:`~client.signing.Pkcs11Signer` at the vendor's PKCS#11 module and token.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from client.errors import SignerError
from client.signing import DEFAULT_PKCS11_MODULE

__all__ = ["SoftHsmToken", "init_softhsm_token"]


@dataclass(frozen=True)
class SoftHsmToken:
    """A SoftHSM2 token: its configuration file (set ``SOFTHSM2_CONF`` to it before the module
    is first loaded in the process), label, user PIN and module."""

    conf: Path
    label: str
    pin: str
    module: str = DEFAULT_PKCS11_MODULE

    @property
    def env(self) -> dict[str, str]:
        return {"SOFTHSM2_CONF": str(self.conf)}


def init_softhsm_token(
    directory: str | os.PathLike[str],
    label: str,
    pin: str,
    so_pin: str,
    *,
    module: str = DEFAULT_PKCS11_MODULE,
    set_env: bool = True,
) -> SoftHsmToken:
    """Initialise a token labelled ``label`` in ``directory`` (its own ``softhsm2.conf`` and
    ``tokens/``); an existing token of that label there is kept. With ``set_env`` this process's
    ``SOFTHSM2_CONF`` points at it (SoftHSM reads it once, when the module is loaded)."""
    util = shutil.which("softhsm2-util")
    if util is None:
        raise SignerError("softhsm2-util is not installed (Debian: apt-get install softhsm2)")
    root = Path(directory).resolve()
    tokens = root / "tokens"
    tokens.mkdir(parents=True, exist_ok=True)
    conf = root / "softhsm2.conf"
    if not conf.exists():
        conf.write_text(
            f"directories.tokendir = {tokens}\n"
            "objectstore.backend = file\n"
            "log.level = ERROR\n"
            "slots.removable = false\n"
        )
    env = {**os.environ, "SOFTHSM2_CONF": str(conf)}
    shown = subprocess.run(
        [util, "--show-slots"], env=env, capture_output=True, text=True, check=False
    )
    labels = {
        line.split(":", 1)[1].strip()
        for line in shown.stdout.splitlines()
        if line.strip().startswith("Label:")
    }
    if label not in labels:
        made = subprocess.run(
            [
                util,
                "--init-token",
                "--free",
                "--label",
                label,
                "--pin",
                pin,
                "--so-pin",
                so_pin,
            ],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if made.returncode != 0:
            raise SignerError(f"softhsm2-util could not make token {label!r}: {made.stderr}")
    if set_env:
        os.environ["SOFTHSM2_CONF"] = str(conf)
    return SoftHsmToken(conf, label, pin, module)
