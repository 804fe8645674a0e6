"""Legacy App Store receipts (PKCS#7 wrapping an ASN.1 attribute set), for tests only.

Shaped as `ReceiptUtility` walks it: ContentInfo -> SignedData -> encapsulated content
(OCTET STRING) -> SET of receipt attributes; attribute 17 holds one in-app purchase as a
nested SET whose attributes 1703 / 1705 are the transaction and original transaction ids.
The signature part is left empty: the receipt is only ever mined for an id, never trusted.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence

import asn1

PKCS7_SIGNED_DATA = "1.2.840.113549.1.7.2"
PKCS7_DATA = "1.2.840.113549.1.7.1"
SHA256 = "2.16.840.1.101.3.4.2.1"

BUNDLE_ID_ATTRIBUTE = 2
APP_VERSION_ATTRIBUTE = 3
IN_APP_ATTRIBUTE = 17
QUANTITY_ATTRIBUTE = 1701
PRODUCT_ID_ATTRIBUTE = 1702
TRANSACTION_ID_ATTRIBUTE = 1703
ORIGINAL_TRANSACTION_ID_ATTRIBUTE = 1705


def _utf8(text: str) -> bytes:
    enc = asn1.Encoder()
    enc.start()
    enc.write(text, asn1.Numbers.UTF8String)
    return enc.output()


def _integer(value: int) -> bytes:
    enc = asn1.Encoder()
    enc.start()
    enc.write(value, asn1.Numbers.Integer)
    return enc.output()


def _attribute_set(attributes: Sequence[tuple[int, bytes]]) -> bytes:
    enc = asn1.Encoder()
    enc.start()
    enc.enter(asn1.Numbers.Set)
    for kind, value in attributes:
        enc.enter(asn1.Numbers.Sequence)
        enc.write(kind, asn1.Numbers.Integer)
        enc.write(1, asn1.Numbers.Integer)
        enc.write(value, asn1.Numbers.OctetString)
        enc.leave()
    enc.leave()
    return enc.output()


def in_app(transaction_id: str, original_transaction_id: str, product_id: str) -> bytes:
    return _attribute_set(
        [
            (QUANTITY_ATTRIBUTE, _integer(1)),
            (PRODUCT_ID_ATTRIBUTE, _utf8(product_id)),
            (TRANSACTION_ID_ATTRIBUTE, _utf8(transaction_id)),
            (ORIGINAL_TRANSACTION_ID_ATTRIBUTE, _utf8(original_transaction_id)),
        ]
    )


def legacy_receipt(
    purchases: Sequence[tuple[str, str]] = (),
    *,
    bundle_id: str = "com.likeness.tests",
    product_id: str = "likeness.pro.monthly",
) -> str:
    """Base64 app receipt with one in-app entry per (transaction id, original id)."""
    attributes: list[tuple[int, bytes]] = [
        (BUNDLE_ID_ATTRIBUTE, _utf8(bundle_id)),
        (APP_VERSION_ATTRIBUTE, _utf8("1.0")),
    ]
    attributes += [(IN_APP_ATTRIBUTE, in_app(t, o, product_id)) for t, o in purchases]
    content = _attribute_set(attributes)

    enc = asn1.Encoder()
    enc.start()
    enc.enter(asn1.Numbers.Sequence)  # ContentInfo
    enc.write(PKCS7_SIGNED_DATA, asn1.Numbers.ObjectIdentifier)
    enc.enter(0, asn1.Classes.Context)
    enc.enter(asn1.Numbers.Sequence)  # SignedData
    enc.write(1, asn1.Numbers.Integer)
    enc.enter(asn1.Numbers.Set)
    enc.enter(asn1.Numbers.Sequence)
    enc.write(SHA256, asn1.Numbers.ObjectIdentifier)
    enc.write(None, asn1.Numbers.Null)
    enc.leave()
    enc.leave()
    enc.enter(asn1.Numbers.Sequence)  # EncapsulatedContentInfo
    enc.write(PKCS7_DATA, asn1.Numbers.ObjectIdentifier)
    enc.enter(0, asn1.Classes.Context)
    enc.write(content, asn1.Numbers.OctetString)
    enc.leave()
    enc.leave()
    enc.enter(asn1.Numbers.Set)  # SignerInfos, empty: nothing here is trusted
    enc.leave()
    enc.leave()
    enc.leave()
    enc.leave()
    return base64.b64encode(enc.output()).decode()
