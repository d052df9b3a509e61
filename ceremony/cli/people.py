"""`ceremony people enrol`: a participant's attestation key on their own token, recorded in the register."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def cmd_enrol(args: argparse.Namespace) -> int:
    from ceremony.cli.common import register_path
    from ceremony.clock import current
    from ceremony.errors import InputError
    from ceremony.keys.personal import person_pin, token_ref
    from ceremony.model.config import data_dir
    from ceremony.model.people import check_person, load_register
    from ceremony.procedures.attestation import enrol_person

    person = check_person(args.person, "PERSON")
    register = register_path(args)
    if register.resolve() == (data_dir() / "people.yaml").resolve():
        raise InputError("--register: name the register to enrol into (the example in data/ is not changed)")
    if person not in load_register(register).people:
        raise InputError(f"{person!r} is not in the participant register {register}")
    token = token_ref(args.token, args.module, args.softhsm_conf)
    pin = person_pin(person, token.token_label)
    done = enrol_person(Path(register), person, token, pin, algorithm=args.algorithm, now=current().now())
    if args.json:
        print(
            json.dumps(
                {
                    "person": done.person,
                    "register": str(done.register),
                    "attestation_key": done.fingerprint,
                    "certificate": str(done.certificate),
                    "token": done.token_label,
                    "key_generated": done.key_generated,
                    "comments_kept": done.comments_kept,
                },
                indent=2,
            )
        )
        return 0
    how = "generated on" if done.key_generated else "already on"
    print(
        f"{person}: attestation key {how} token {done.token_label!r} ({done.fingerprint}); "
        f"certificate {done.certificate}; register {done.register} updated"
        + ("" if done.comments_kept else " (rewritten whole: its comments are gone)")
    )
    return 0


def add_parsers(sub: Any) -> None:
    p = sub.add_parser("people", help="participants: enrol a person's attestation key on their own token")
    people = p.add_subparsers(dest="people_command", required=True, parser_class=type(p))
    e = people.add_parser("enrol", help="a key pair on the person's token, its certificate, the register entry")
    e.add_argument("person", help="the person's id in the participant register")
    e.add_argument("--token", required=True, metavar="LABEL", help="the label of the person's own token")
    e.add_argument("--module", metavar="PATH", help="the token's PKCS#11 module (default: SoftHSM2)")
    e.add_argument("--softhsm-conf", metavar="PATH", help="SoftHSM2 only: the configuration the token lives under")
    e.add_argument("--algorithm", choices=["ec-p256", "rsa-3072"], default="ec-p256")
    e.add_argument(
        "--register", metavar="PATH", help="participant register (default: $CEREMONY_REGISTER, <workspace>/people.yaml)"
    )
    e.add_argument("--json", action="store_true", help="print one JSON object describing what was done")
    e.set_defaults(func=cmd_enrol)
