"""Drives the device socket with the reference Wyoming client library (python3-wyoming), not
with this repository's framing code, and prints one JSON summary line for the test to assert.

usage: PYTHONPATH=<python3-wyoming dist-packages> python3 wyoming-session.py SOCKET_PATH
"""
import asyncio
import json
import sys

from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncClient
from wyoming.event import Event
from wyoming.ping import Ping, Pong

RATE, WIDTH, CHANNELS = 16000, 2, 1
CHUNK = 640  # 20 ms of 16 kHz 16-bit mono


async def read_until(client, wanted, seen):
    """Reads events until one of type `wanted`; every event read is appended to `seen`."""
    while True:
        event = await asyncio.wait_for(client.read_event(), timeout=20)
        if event is None:
            raise RuntimeError(f"connection closed while waiting for {wanted}")
        seen.append(event)
        if event.type == wanted:
            return event


async def main(path):
    summary = {}
    seen = []
    async with AsyncClient.from_uri(f"unix://{path}") as client:
        await client.write_event(Event(type="describe"))
        summary["info"] = (await read_until(client, "info", seen)).data

        await client.write_event(Ping(text="hello wyoming").event())
        summary["pong"] = Pong.from_event(await read_until(client, "pong", seen)).text

        await client.write_event(Event(type="status"))
        summary["status"] = (await read_until(client, "status", seen)).data

        await client.write_event(Event(type="subscribe"))
        summary["state"] = (await read_until(client, "state", seen)).data["state"]

        await client.write_event(
            Event(
                type="cic-event",
                data={
                    "namespace": "SpeechRecognizer",
                    "name": "Recognize",
                    "payload": {"profile": "CLOSE_TALK", "format": "AUDIO_L16_RATE_16000_CHANNELS_1"},
                    "dialogRequestId": "wyoming-dialog-1",
                    "audio": True,
                    "id": "wyoming-1",
                },
            )
        )
        await client.write_event(AudioStart(rate=RATE, width=WIDTH, channels=CHANNELS).event())
        # 10 chunks = 6,400 bytes: the CIC emulator answers with StopCapture on the downchannel.
        for i in range(10):
            await client.write_event(AudioChunk(rate=RATE, width=WIDTH, channels=CHANNELS, audio=bytes([i]) * CHUNK).event())
        mark = len(seen)
        while True:
            event = await read_until(client, "directive", seen)
            if event.data["directive"]["header"]["name"] == "StopCapture":
                break
        # A microphone that had not heard yet: these are dropped by the runtime.
        for i in range(3):
            await client.write_event(AudioChunk(rate=RATE, width=WIDTH, channels=CHANNELS, audio=b"\xff" * CHUNK).event())
        await client.write_event(AudioStop().event())

        sent = None
        end = None
        while sent is None or end is None:
            event = await asyncio.wait_for(client.read_event(), timeout=20)
            if event is None:
                raise RuntimeError("connection closed before event-sent and attachment-end")
            seen.append(event)
            if event.type == "event-sent":
                sent = event.data
            elif event.type == "attachment-end":
                end = event.data
        summary["eventSent"] = sent
        summary["attachmentEnd"] = end
        after = seen[mark:]
        summary["directives"] = [e.data["directive"]["header"]["name"] for e in after if e.type == "directive"]
        summary["directiveSources"] = sorted({e.data["source"] for e in after if e.type == "directive"})
        chunks = [e for e in after if e.type == "attachment-chunk"]
        summary["attachmentChunks"] = len(chunks)
        summary["attachmentBytes"] = sum(len(e.payload or b"") for e in chunks)
        summary["attachmentContentIds"] = sorted({e.data["contentId"] for e in chunks})
        summary["attachmentFirstBytes"] = list((chunks[0].payload or b"")[:8]) if chunks else []
    print(json.dumps(summary))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
