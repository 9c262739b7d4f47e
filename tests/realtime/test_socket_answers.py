"""The three sockets answer frames through one shared piece (realtime/sockets.py): the same bad frame gets the
same ``error`` on the resident socket, the agent console's and the bell's, naming the refused frame's type and
``client_msg_id``; ``ping`` is answered alike; and the staff sockets keep only their own frame handlers."""

from __future__ import annotations

from pathlib import Path

from tests.factories import ChatSocket, desk_agent, new_visitor, served, staff_user

GASDESK = Path(__file__).resolve().parents[2] / "gasdesk"
ODD_FRAMES = [
    ('{"type": "no_such_frame", "client_msg_id": "c-7"}', "unknown_frame"),
    ('{"type": "ping", "x": "a\\u0000b"}', "invalid_frame"),
    ("[1, 2]", "invalid_frame"),
    ("not json", "invalid_frame"),
]


async def _answers(ws: ChatSocket) -> list[dict]:
    got = []
    for raw, _ in ODD_FRAMES:
        await ws.ws.send(raw)
        error = await ws.until("error")
        got.append({key: error.get(key) for key in ("code", "client_msg_id", "request_type")})
    await ws.send(type="ping")
    got.append(await ws.until(lambda f: f["type"] in ("pong", "error")))
    return got


async def test_every_socket_answers_bad_frames_and_pings_the_same_way(app, session, factory) -> None:
    agent = await desk_agent(factory)
    dispatcher = await staff_user(session, "dispatcher")
    answers = {}
    async with served(app) as host:
        visitor = await new_visitor(host)
        async with ChatSocket.connect(host) as ws:
            await ws.send(type="hello", token=visitor["token"])
            await ws.until("welcome")
            answers["/ws/webchat"] = await _answers(ws)
        for path, user in (("/ws/agent", agent), ("/ws/staff", dispatcher)):
            headers = {"Authorization": f"Bearer {await factory.token(user)}"}
            async with ChatSocket.connect(host, path, additional_headers=headers) as ws:
                await ws.until("hello")
                answers[path] = await _answers(ws)
    expected = [{"code": code, "client_msg_id": None, "request_type": None} for _, code in ODD_FRAMES]
    expected[0] = {"code": "unknown_frame", "client_msg_id": "c-7", "request_type": "no_such_frame"}
    expected[1]["request_type"] = "ping"  # parsed far enough to know its type, refused for the NUL
    expected.append({"type": "pong"})
    assert answers == {"/ws/webchat": expected, "/ws/agent": expected, "/ws/staff": expected}


def test_staff_sockets_keep_only_their_handlers() -> None:
    """The receive loop, frame parsing and error answers live once, in realtime/sockets.py."""
    for name in ("conversations/agent_socket.py", "notifications/socket.py", "channels/webchat/socket.py"):
        source = (GASDESK / name).read_text()
        for own in ("load_frame(raw", "check_frame(", "except GasdeskError", '"internal_error"', '{"type": "pong"}'):
            assert own not in source, f"{name} repeats the shared socket code: {own}"
    for name in ("conversations/agent_socket.py", "notifications/socket.py"):
        source = (GASDESK / name).read_text()
        assert "serve_staff_socket(" in source and "receive_frame" not in source and "while True" not in source
