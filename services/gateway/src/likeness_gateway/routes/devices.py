"""Device registration."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from likeness_gateway.deps import GatewayDep, client_ip
from likeness_gateway.domain.text import PRINTABLE
from likeness_gateway.domain.tokens import new_token, token_hash
from likeness_gateway.errors import ApiError

router = APIRouter(tags=["devices"])


class DeviceRegistration(BaseModel):
    """Only what the apps' privacy policies allow is accepted and kept."""

    model_config = {
        "extra": "forbid",
        "json_schema_extra": {
            "examples": [
                {
                    "platform": "ios",
                    "model": "iPhone15,2",
                    "os_version": "18.1",
                    "app_version": "2.3.0",
                    "language": "en-GB",
                    "age_confirmed": True,
                }
            ]
        },
    }

    platform: Literal["ios", "android", "web"]
    model: str = Field(min_length=1, max_length=64, pattern=PRINTABLE)
    os_version: str = Field(min_length=1, max_length=32, pattern=PRINTABLE)
    app_version: str = Field(min_length=1, max_length=32, pattern=PRINTABLE)
    language: str = Field(min_length=2, max_length=16, pattern=r"^[A-Za-z]{2,3}([_-][A-Za-z0-9]{2,8})*$")
    age_confirmed: bool = Field(description="The user confirmed being 13 or older. Devices that do not are refused and nothing is stored.")


class DeviceRegistered(BaseModel):
    device_id: str
    token: str = Field(description="Shown once; send it as 'Authorization: Bearer <token>'. Only its hash is stored.")
    # No subject_id: the internal id that keys a person's data across services never leaves the mesh.


@router.post("/v1/devices", status_code=201, response_model=DeviceRegistered, summary="Register a device and get its token")
async def register_device(body: DeviceRegistration, request: Request, gw: GatewayDep) -> DeviceRegistered:
    if not body.age_confirmed:
        # Invariant 6: nothing is stored about a user under 13, not even a subject.
        raise ApiError(403, "AGE_NOT_CONFIRMED", "users under 13 cannot use this service; nothing was stored")
    response = await gw.privacy.register_subject(minor=False)
    subject_id = response.subject.subject_id
    token = new_token()
    device = await gw.devices.add(subject_id, token_hash(token), body.model_dump(exclude={"age_confirmed"}))
    await gw.privacy.record_security_event(subject_id, "device_registered", client_ip(request))
    return DeviceRegistered(device_id=device.device_id, token=token)
