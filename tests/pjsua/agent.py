#!/usr/bin/env python3
"""An agent's softphone (PJSIP via pjsua2): registers with digest, rings on
incoming calls, answers after a delay (or never), plays a WAV file into the
call and records what it hears; can dial feature codes.

usage: agent.py REGISTRAR ID PASSWORD --port 5080 --answer-after 1.0|never|busy
                [--play voice.wav] [--record out.wav] [--codec PCMU|PCMA]
                [--dial '*2@0.5,*1@6'] [--duration 20] [--hangup-after S]

Prints one line per event, with the wall-clock time (epoch seconds):
  registered <status> <t> / incoming <t> / answered <t> / disconnected <code> <t>
  dialled <code> <status> <t>
"""
import argparse
import time

import pjsua2 as pj


def now():
    return "%.3f" % time.time()


class AgentCall(pj.Call):
    def __init__(self, acc, call_id=pj.PJSUA_INVALID_ID, play=None, record=None):
        super().__init__(acc, call_id)
        self.play = play
        self.record = record
        self.player = None
        self.recorder = None
        self.disconnected = False
        self.confirmed_at = None
        self.code = None

    def onCallState(self, prm):
        ci = self.getInfo()
        if ci.state == pj.PJSIP_INV_STATE_CONFIRMED and self.confirmed_at is None:
            self.confirmed_at = time.time()
            print("answered", now(), flush=True)
        if ci.state == pj.PJSIP_INV_STATE_DISCONNECTED:
            self.disconnected = True
            self.code = ci.lastStatusCode
            # Closing the recorder finishes the WAV file (its header).
            self.recorder = None
            self.player = None
            print("disconnected", ci.lastStatusCode, now(), flush=True)

    def onCallMediaState(self, prm):
        ci = self.getInfo()
        for i, mi in enumerate(ci.media):
            if mi.type != pj.PJMEDIA_TYPE_AUDIO or mi.status != pj.PJSUA_CALL_MEDIA_ACTIVE:
                continue
            aud = self.getAudioMedia(i)
            if self.record and self.recorder is None:
                self.recorder = pj.AudioMediaRecorder()
                self.recorder.createRecorder(self.record)
                aud.startTransmit(self.recorder)
            if self.play and self.player is None:
                self.player = pj.AudioMediaPlayer()
                self.player.createPlayer(self.play)  # loops
                self.player.startTransmit(aud)


class Agent(pj.Account):
    def __init__(self, args):
        super().__init__()
        self.args = args
        self.calls = []
        self.registered = None

    def onRegState(self, prm):
        print("registered", prm.code, now(), flush=True)
        if prm.code // 100 == 2:
            self.registered = time.time()

    def onIncomingCall(self, prm):
        call = AgentCall(self, prm.callId, self.args.play, self.args.record)
        call.arrived = time.time()
        print("incoming", now(), flush=True)
        op = pj.CallOpParam()
        if self.args.answer_after == "busy":
            op.statusCode = 486
            call.answer(op)
        else:
            op.statusCode = 180
            call.answer(op)
        self.calls.append(call)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("registrar")
    ap.add_argument("id")
    ap.add_argument("password")
    ap.add_argument("--port", type=int, default=5080)
    ap.add_argument("--answer-after", default="1.0")
    ap.add_argument("--play")
    ap.add_argument("--record")
    ap.add_argument("--codec", default="PCMU")
    ap.add_argument("--dial", default="")
    ap.add_argument("--duration", type=float, default=20.0)
    ap.add_argument("--hangup-after", type=float, default=0.0)
    ap.add_argument("--transport", choices=["udp", "tcp"], default="udp")
    a = ap.parse_args()

    ep = pj.Endpoint()
    ep.libCreate()
    cfg = pj.EpConfig()
    cfg.uaConfig.threadCnt = 0
    cfg.uaConfig.mainThreadOnly = True
    cfg.logConfig.level = 1
    cfg.logConfig.consoleLevel = 1
    cfg.medConfig.clockRate = 8000
    cfg.medConfig.sndClockRate = 8000
    cfg.medConfig.noVad = True
    ep.libInit(cfg)
    tcfg = pj.TransportConfig()
    tcfg.port = a.port
    tcfg.boundAddress = "127.0.0.1"
    tcfg.publicAddress = "127.0.0.1"
    kind = pj.PJSIP_TRANSPORT_TCP if a.transport == "tcp" else pj.PJSIP_TRANSPORT_UDP
    ep.transportCreate(kind, tcfg)
    ep.libStart()
    ep.audDevManager().setNullDev()
    for c in ep.codecEnum2():
        ep.codecSetPriority(c.codecId, 255 if c.codecId.startswith(a.codec + "/") else 0)

    acfg = pj.AccountConfig()
    t = ";transport=tcp" if a.transport == "tcp" else ""
    acfg.idUri = "sip:%s@%s" % (a.id, a.registrar)
    acfg.regConfig.registrarUri = "sip:%s%s" % (a.registrar, t)
    acfg.regConfig.timeoutSec = 300
    acfg.sipConfig.authCreds.append(pj.AuthCredInfo("digest", "*", a.id, 0, a.password))
    acfg.natConfig.iceEnabled = False
    acfg.natConfig.sdpNatRewriteUse = 0
    acfg.natConfig.viaRewriteUse = 0
    acfg.natConfig.contactRewriteUse = 0
    acfg.mediaConfig.transportConfig.boundAddress = "127.0.0.1"
    acfg.mediaConfig.transportConfig.port = a.port + 1000
    acc = Agent(a)
    acc.create(acfg)

    dials = []
    for d in filter(None, a.dial.split(",")):
        code, at = d.split("@")
        dials.append([code, float(at), None])

    start = time.time()
    while time.time() - start < a.duration:
        ep.libHandleEvents(10)
        t = time.time()
        for call in acc.calls:
            if call.disconnected or a.answer_after in ("never", "busy"):
                continue
            if call.confirmed_at is None and not getattr(call, "ok_sent", False):
                if t - call.arrived >= float(a.answer_after):
                    op = pj.CallOpParam()
                    op.statusCode = 200
                    call.answer(op)
                    call.ok_sent = True
            elif call.confirmed_at and a.hangup_after and t - call.confirmed_at >= a.hangup_after:
                if not getattr(call, "bye_sent", False):
                    call.hangup(pj.CallOpParam(True))
                    call.bye_sent = True
        if acc.registered:
            for d in dials:
                if d[2] is None and t - acc.registered >= d[1]:
                    c = AgentCall(acc, record=(a.record + "." + d[0].strip("*") + ".wav") if a.record else None)
                    c.makeCall("sip:%s@%s" % (d[0], a.registrar), pj.CallOpParam(True))
                    d[2] = c
                    print("dialling", d[0], now(), flush=True)
                elif d[2] is not None and d[2].disconnected and len(d) == 3:
                    print("dialled", d[0], d[2].code, now(), flush=True)
                    d.append(True)
    for call in acc.calls:
        if not call.disconnected:
            call.hangup(pj.CallOpParam(True))
    for _ in range(50):
        ep.libHandleEvents(10)
    acc.shutdown()
    for _ in range(30):
        ep.libHandleEvents(10)
    ep.libDestroy()


if __name__ == "__main__":
    main()
