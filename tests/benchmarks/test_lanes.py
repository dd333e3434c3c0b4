"""The benchmark's floor lane times each delta by the frame that brought it."""

import asyncio
import json

from websockets.asyncio.server import ServerConnection, serve

from azure_sim.composing import split_tokens
from bench.lanes import FloorLane, Turn

BURST = 3


async def test_a_floor_delta_arrives_with_its_own_frame_not_an_earlier_one() -> None:
    # Spaces and punctuation are not letters: counting them made one frame bring the arrival
    # of several later deltas (a lag below zero).
    text = "Alpha, beta and gamma; delta with epsilon. Zeta, eta: theta iota kappa lambda"
    tokens = split_tokens(text)
    pieces = ["".join(tokens[i : i + BURST]) for i in range(0, len(tokens), BURST)]

    async def floor(socket: ServerConnection) -> None:
        assert json.loads(await socket.recv()) == {"text": text}
        for piece in pieces:
            await socket.send(piece)
            await asyncio.sleep(0.002)  # the floor's pace: frames a little apart
        await socket.send(b"completed")

    async with serve(floor, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        lane = await FloorLane.open(f"http://127.0.0.1:{port}")
        turn = Turn("floor", text, burst=BURST)
        try:
            await lane.turn(turn)
        finally:
            await lane.close()

    assert turn.status == "completed"
    assert len(turn.frames) == len(pieces) > 5
    assert turn.arrivals == turn.frames
