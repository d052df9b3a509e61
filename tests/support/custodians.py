"""People in the room, scripted: an attended console whose custodians keep their share cards in their heads.

Each custodian types back the card they were handed (as on paper: the console reads it before a live
workspace removes it) and later presents what they hold; gates are confirmed by the first person allowed.
Nothing they hold is written anywhere: the test keeps it in memory, as custodians keep paper.
"""

from __future__ import annotations

from pathlib import Path

from ceremony.keys.custody import read_share_card
from ceremony.keys.symmetric import read_component_card


class Custodians:
    """An attended console played by the custodians of every ceremony it is given to."""

    attended = True

    def __init__(self) -> None:
        #: purpose -> custodian -> share words (what each carries away on paper)
        self.shares: dict[str, dict[str, str]] = {}
        #: key label -> custodian -> component hex
        self.components: dict[str, dict[str, str]] = {}
        self.shown: list[str] = []
        #: share cards seen on the disk when each was typed back (a live workspace holds one at a time)
        self.cards_on_disk: list[int] = []

    def confirm(self, gate: str, text: str, allowed: list[str]) -> str | None:
        return allowed[0]

    def present_shares(self, purpose: str, custodians: list[str], m: int) -> list[tuple[str, str]]:
        held = self.shares.get(purpose, {})
        return [(who, held[who]) for who in custodians if who in held][:m]

    def reenter_share(self, custodian: str, card: Path) -> str:
        self.cards_on_disk.append(len(list(card.parent.glob("*.txt"))))
        purpose = card.read_text(encoding="utf-8").split("SHARE CARD - ", 1)[1].split(" - ceremony ", 1)[0]
        words = read_share_card(card)
        self.shares.setdefault(purpose, {})[custodian] = words
        return words

    def reenter_component(self, custodian: str, card: Path) -> str:
        self.cards_on_disk.append(len(list(card.parent.glob("*.txt"))))
        label = card.name.rsplit(".component-", 1)[0].split(".", 1)[1]
        value = read_component_card(card).hex()
        self.components.setdefault(label, {})[custodian] = value
        return value

    def present_component(self, key_label: str, custodian: str) -> str:
        return self.components[key_label][custodian]

    def show(self, text: str) -> None:
        self.shown.append(text)
