"""Made-up identity data in the shape of the Blockpass seed answer."""

from __future__ import annotations

import base64
import json
import random
from typing import Any

PICTURE_KEYS = frozenset(
    {"selfie", "passport", "selfie_national_id", "proof_of_address", "national_id", "driving_license"}
)

_GIVEN = ("Helmer", "Ana", "Kofi", "Mei", "Lars", "Priya", "Tomas", "Yuki", "Amara", "Diego")
_FAMILY = ("StromanBot", "Nguyen", "Okafor", "Larsen", "Sato", "Moreau", "Silva", "Kowalski")
_CITIES = (("Luettgenchester", "VNM"), ("Porto", "PRT"), ("Accra", "GHA"), ("Osaka", "JPN"))

# The JPEG magic the seed's base64 values start with ("/9j/4AAQSkZJRgABAQ..."), so the fakes
# look like pictures to anything sniffing them while staying a few dozen bytes.
_JPEG_HEAD = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x01\x00H\x00H\x00\x00"


def _tiny_picture(rng: random.Random) -> str:
    return base64.b64encode(_JPEG_HEAD + rng.randbytes(12) + b"\xff\xd9").decode("ascii")


def fake_identities(seed: str) -> dict[str, Any]:
    """Plain-valued identities (normalized later); seeded so one candidate always gets the same data."""
    rng = random.Random(seed)
    given, family = rng.choice(_GIVEN), rng.choice(_FAMILY)
    city, country = rng.choice(_CITIES)
    number = f"{rng.randrange(10**8, 10**9)}"
    return {
        "given_name": given,
        "family_name": family,
        "dob": f"{rng.randint(1, 12):02d}/{rng.randint(1, 28):02d}/{rng.randint(1950, 2004)}",
        "email": f"{given.lower()}.{family.lower()}@example.com",
        "phone": {
            "countryCode": country,
            "countryCode2": country[:2].lower(),
            "phoneNumber": f"+1{number}",
            "number": number,
        },
        "address": {
            "postalCode": f"{rng.randrange(10000, 99999)}",
            "city": city,
            "address": f"{rng.randrange(1, 9999)} Sandbox Street",
            "extraInfo": "",
            "country": country,
            "state": "",
        },
        "selfie": _tiny_picture(rng),
        "passport": _tiny_picture(rng),
    }


def fake_certs(seed: str) -> dict[str, str]:
    rng = random.Random(seed + "/certs")
    cert = {
        "@context": [{"@version": 1.1}],
        "type": ["VerifiableCredential"],
        "issuer": "did:sandbox:blockpass",
        "credentialSubject": {"id": f"did:sandbox:{rng.getrandbits(64):016x}", "email": "verified"},
    }
    return {"email": json.dumps(cert, separators=(",", ":"))}
