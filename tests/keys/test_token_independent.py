"""What anyone holding the user PIN can do with the CA token, checked without the workbench: PyKCS11 (another
PKCS#11 binding) and OpenSC's pkcs11-tool, after the backup and restore ceremonies have run.

Every CA key and seal key must read SENSITIVE and not EXTRACTABLE, and C_WrapKey of each under an AES key the PIN
holder makes must fail with CKR_KEY_UNEXTRACTABLE (the attack: wrap under your own key, unwrap offline). The probe
runs in a fresh interpreter that imports nothing of ``ceremony``: SOFTHSM2_CONF points at the workspace's token
before the library is loaded, and the PIN travels in its environment, never on a command line.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import shamir_mnemonic

from ceremony.keys.pkcs11 import find_softhsm_module
from tests.support.ceremony_files import live_workspace, run_examples

pytestmark = pytest.mark.hsm
TOKENS = {"s1sp-ca-token": {"ca-s1sp-root", "ca-s1sp-issuing", "ceremony-seal"},
          "s1sp-restore-token": {"ca-s1sp-root", "ceremony-seal"}}  # fmt: skip
CKR_KEY_UNEXTRACTABLE = 0x6A
CKR_MECHANISM_INVALID = 0x70
PIN_VARIABLE = "PROBE_USER_PIN"  # noqa: S105 - a variable name, not a PIN

#: Run as ``python -c``: log in with the PIN, read every private key's attributes, try to wrap each out.
PROBE = r"""
import json, os, sys
import PyKCS11
from PyKCS11 import LowLevel

module, label = sys.argv[1], sys.argv[2]
lib = PyKCS11.PyKCS11Lib()
lib.load(module)
(slot,) = [s for s in lib.getSlotList(tokenPresent=True) if lib.getTokenInfo(s).label.strip() == label]
offered = [PyKCS11.CKM[name] for name in lib.getMechanismList(slot) if isinstance(PyKCS11.CKM.get(name), int)]
session = lib.openSession(slot, PyKCS11.CKF_SERIAL_SESSION | PyKCS11.CKF_RW_SESSION)
session.login(os.environ["PROBE_USER_PIN"])
mine = session.generateKey(
    [(PyKCS11.CKA_CLASS, PyKCS11.CKO_SECRET_KEY), (PyKCS11.CKA_KEY_TYPE, PyKCS11.CKK_AES),
     (PyKCS11.CKA_VALUE_LEN, 32), (PyKCS11.CKA_TOKEN, False), (PyKCS11.CKA_WRAP, True)],
    PyKCS11.Mechanism(PyKCS11.CKM_AES_KEY_GEN),
)
names = {"LABEL": PyKCS11.CKA_LABEL, "ID": PyKCS11.CKA_ID, "EXTRACTABLE": PyKCS11.CKA_EXTRACTABLE,
         "SENSITIVE": PyKCS11.CKA_SENSITIVE, "WRAP_WITH_TRUSTED": PyKCS11.CKA_WRAP_WITH_TRUSTED,
         "MODIFIABLE": PyKCS11.CKA_MODIFIABLE}
keys = []
for key in session.findObjects([(PyKCS11.CKA_CLASS, PyKCS11.CKO_PRIVATE_KEY)]):
    values = dict(zip(names, session.getAttributeValue(key, list(names.values()))))
    values["ID"] = bytes(values["ID"]).hex()
    wraps = {}
    for mechanism in (0x2109, 0x210A, 0x210B):
        try:
            wraps[hex(mechanism)] = {"wrapped": len(session.wrapKey(mine, key, PyKCS11.Mechanism(mechanism, None)))}
        except PyKCS11.PyKCS11Error as exc:
            wraps[hex(mechanism)] = {"error": exc.value}
    keys.append({**values, "wraps": wraps})
# The probe can wrap: an extractable session key of its own making goes out under the same AES key.
public, private = session.generateKeyPair(
    [(PyKCS11.CKA_TOKEN, False), (PyKCS11.CKA_EC_PARAMS, bytes.fromhex("06082a8648ce3d030107"))],
    [(PyKCS11.CKA_TOKEN, False), (PyKCS11.CKA_SENSITIVE, True), (PyKCS11.CKA_EXTRACTABLE, True)],
    PyKCS11.Mechanism(PyKCS11.CKM_EC_KEY_PAIR_GEN),
)
control = len(session.wrapKey(mine, private, PyKCS11.Mechanism(0x210A, None)))
session.logout()
print(json.dumps({"offered": offered, "keys": keys, "control": control}))
"""


def _pin(ws: Path, token: str) -> str:
    """The user PIN the deposited shares rebuild (shamir-mnemonic alone; the PIN is the secret in hex)."""
    directory = ws / "secrets" / "shares" / f"{token}.user-pin"
    words = [p.read_text(encoding="utf-8").strip() for p in sorted(directory.glob("*.share"))]
    return bytes(shamir_mnemonic.combine_mnemonics(words)).hex()


def _environment(ws: Path, token: str) -> dict[str, str]:
    return {**os.environ, "SOFTHSM2_CONF": str(ws / "token" / "softhsm2.conf"), PIN_VARIABLE: _pin(ws, token)}


@pytest.fixture(scope="module")
def restored(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SoftHSM2 workspace through the example ceremonies up to the restore test (unattended, shares deposited)."""
    if find_softhsm_module() is None:
        pytest.skip("SoftHSM2 is not installed (apt-get install softhsm2)")
    ws = live_workspace(tmp_path_factory.mktemp("independent") / "ws", "pkcs11")
    run_examples(ws, "key-restore")
    return ws


@pytest.mark.parametrize("token", list(TOKENS))
def test_no_key_can_be_wrapped_out_by_the_pin_holder(restored: Path, token: str) -> None:
    module = find_softhsm_module()
    assert module is not None
    done = subprocess.run(
        [sys.executable, "-c", PROBE, module, token],
        env=_environment(restored, token),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    probe = json.loads(done.stdout)
    assert probe["control"] > 0  # the attack works on a key that is extractable
    keys = {k["LABEL"]: k for k in probe["keys"]}
    assert set(keys) == TOKENS[token]
    for label, key in keys.items():
        assert (key["SENSITIVE"], key["EXTRACTABLE"]) == (True, False), label
        assert key["WRAP_WITH_TRUSTED"] is False  # SoftHSM2: TRUSTED keys would rest unencrypted (not used)
        assert key["ID"] and key["MODIFIABLE"] is True, label
        for mechanism, outcome in key["wraps"].items():
            offered = int(mechanism, 16) in probe["offered"]
            expected = CKR_KEY_UNEXTRACTABLE if offered else CKR_MECHANISM_INVALID
            assert outcome == {"error": expected}, (label, mechanism, outcome)
    assert {0x2109, 0x210A} <= set(probe["offered"])  # SoftHSM2 2.6: no KWP (0x210B)


@pytest.mark.skipif(shutil.which("pkcs11-tool") is None, reason="OpenSC's pkcs11-tool is not installed")
def test_pkcs11_tool_lists_no_ca_key_as_extractable(restored: Path) -> None:
    module = find_softhsm_module()
    assert module is not None
    token = "s1sp-ca-token"
    # pkcs11-tool (OpenSC 0.23) reads the PIN from an environment variable with "env:NAME": not on argv.
    done = subprocess.run(
        ["pkcs11-tool", "--module", module, "--token-label", token, "--login", "--pin", f"env:{PIN_VARIABLE}",
         "--list-objects", "--type", "privkey"],
        env=_environment(restored, token), capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    access: dict[str, set[str]] = {}
    label = None
    for line in done.stdout.splitlines():
        name, _, value = line.strip().partition(":")
        if name == "label":
            label = value.strip()
        elif name == "Access" and label is not None:
            access[label] = {part.strip() for part in value.split(",")}
    assert set(access) == TOKENS[token]
    for label, flags in access.items():
        # pkcs11-tool says "extractable" for CKA_EXTRACTABLE true, "never extractable" for CKA_NEVER_EXTRACTABLE.
        assert "sensitive" in flags and "extractable" not in flags, (label, flags)
    # The root key was EXTRACTABLE until its restore test: never extractable it can no longer be. The issuing
    # key (no backup) and the seal key were generated unextractable.
    assert "never extractable" not in access["ca-s1sp-root"]
    assert "never extractable" in access["ca-s1sp-issuing"] and "never extractable" in access["ceremony-seal"]
