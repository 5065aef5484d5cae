"""Fixtures of the client's tests.

- ``hsm`` (session): a SoftHSM2 token of its own in a temporary directory (``SOFTHSM2_CONF``
  points at it before the PKCS#11 module is first loaded in the process; SoftHSM reads it
  once), Debian's module ``/usr/lib/softhsm/libsofthsm2.so``. Tests give their keys labels of
  their own (:func:`key_label`).
- ``hsm_signer``: ``hsm_signer("bank")`` generates a key on that token under a fresh label and
  answers its :class:`~client.signing.Pkcs11Signer`, closed after the test.
- ``stack`` (module): the whole platform as processes (:class:`bench.stack.Stack`).
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from bench.stack import Stack
from client.signing import DEFAULT_PKCS11_MODULE, Pkcs11Signer, generate_pkcs11_key
from client.softhsm import SoftHsmToken, init_softhsm_token
from tests.support.hsm import key_label

PIN = "246810"
SO_PIN = "13579111"


@pytest.fixture(scope="session")
def hsm(tmp_path_factory: pytest.TempPathFactory) -> SoftHsmToken:
    if shutil.which("softhsm2-util") is None or not Path(DEFAULT_PKCS11_MODULE).exists():
        pytest.fail("SoftHSM2 is not installed: run scripts/bootstrap (it installs softhsm2)")
    return init_softhsm_token(tmp_path_factory.mktemp("softhsm"), "tierflow-test", PIN, SO_PIN)


@pytest.fixture
def hsm_signer(hsm: SoftHsmToken) -> Iterator[Callable[[str], Pkcs11Signer]]:
    with contextlib.ExitStack() as opened:

        def new_key(prefix: str) -> Pkcs11Signer:
            label = key_label(prefix)
            generate_pkcs11_key(hsm.label, hsm.pin, label, module=hsm.module)
            return opened.enter_context(Pkcs11Signer(hsm.label, hsm.pin, label, module=hsm.module))

        yield new_key


@pytest.fixture(scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    async with Stack.start(tmp_path_factory.mktemp("stack")) as running:
        yield running
