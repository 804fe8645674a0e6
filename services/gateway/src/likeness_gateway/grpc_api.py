"""The gateway's gRPC side: operator Devices view and DataHolder for device records."""

from __future__ import annotations

from typing import Any

from likeness.gateway.v1 import gateway_pb2, gateway_pb2_grpc
from likeness_gateway.adapters.devices import DeviceRepository
from likeness_gateway.holder import GatewayHolder
from likeness_platform.dataholder import add_dataholder, message_from
from likeness_platform.errors import NotFound


class DevicesServicer(gateway_pb2_grpc.DevicesServicer):
    def __init__(self, devices: DeviceRepository) -> None:
        self._devices = devices

    async def GetDevice(self, request: Any, context: Any) -> gateway_pb2.GetDeviceResponse:
        device = await self._devices.get(request.device_id)
        if device is None:
            raise NotFound("no such device", "DEVICE_NOT_FOUND")
        return gateway_pb2.GetDeviceResponse(device=message_from(gateway_pb2.Device, device))


def register(server: Any, devices: DeviceRepository, holder: GatewayHolder) -> list[str]:
    """The operator Devices view and the DataHolder (devices, accounts and their codes)."""
    gateway_pb2_grpc.add_DevicesServicer_to_server(DevicesServicer(devices), server)
    return [str(gateway_pb2.DESCRIPTOR.services_by_name["Devices"].full_name), add_dataholder(server, holder)]
