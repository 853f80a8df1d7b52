#!/usr/bin/env python3
"""A second, independent SIP stack (PJSIP via pjsua2) calls the engine, records
what it hears to a WAV file, presses a key, and hangs up.

usage: call_and_record.py TARGET_URI OUT.wav --key 4 --key-at 2.5 --duration 6 [--dtmf rfc2833|info]
                          [--play voice.wav] [--codec PCMU|PCMA]
Prints one line per event; exits non-zero if the call was not answered.
With --play, the WAV file (looped) is what the caller says.
"""
import argparse
import sys
import time

import pjsua2 as pj


class Call(pj.Call):
    def __init__(self, acc, out_path, play=None):
        super().__init__(acc)
        self.out_path = out_path
        self.play = play
        self.player = None
        self.recorder = None
        self.confirmed = False
        self.disconnected = False
        self.answered_at = None

    def onCallState(self, prm):
        ci = self.getInfo()
        print("state", ci.stateText, ci.lastStatusCode, flush=True)
        if ci.state == pj.PJSIP_INV_STATE_CONFIRMED:
            self.confirmed = True
        if ci.state == pj.PJSIP_INV_STATE_DISCONNECTED:
            self.disconnected = True

    def onCallMediaState(self, prm):
        ci = self.getInfo()
        for i, mi in enumerate(ci.media):
            if mi.type == pj.PJMEDIA_TYPE_AUDIO and mi.status == pj.PJSUA_CALL_MEDIA_ACTIVE and self.recorder is None:
                aud = self.getAudioMedia(i)
                self.recorder = pj.AudioMediaRecorder()
                self.recorder.createRecorder(self.out_path)
                aud.startTransmit(self.recorder)
                if self.play:
                    self.player = pj.AudioMediaPlayer()
                    self.player.createPlayer(self.play)
                    self.player.startTransmit(aud)
                self.answered_at = time.time()
                print("media active, recording", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("target")
    ap.add_argument("out")
    ap.add_argument("--key", default="4")
    ap.add_argument("--key-at", type=float, default=2.5)
    ap.add_argument("--duration", type=float, default=6.0)
    ap.add_argument("--dtmf", choices=["rfc2833", "info"], default="rfc2833")
    ap.add_argument("--port", type=int, default=5072)
    ap.add_argument("--play")
    ap.add_argument("--codec", choices=["PCMU", "PCMA"], default="PCMU")
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
    ep.transportCreate(pj.PJSIP_TRANSPORT_UDP, tcfg)
    ep.libStart()
    ep.audDevManager().setNullDev()
    # G.711 only, PCMU first by default: what a trunk would offer.
    other = "PCMA" if a.codec == "PCMU" else "PCMU"
    for c in ep.codecEnum2():
        prio = 0
        if c.codecId.startswith(a.codec + "/"):
            prio = 255
        elif c.codecId.startswith(other + "/") and not a.play:
            prio = 254
        ep.codecSetPriority(c.codecId, prio)

    acfg = pj.AccountConfig()
    acfg.idUri = "sip:+46700000001@127.0.0.1:%d" % a.port
    acfg.natConfig.iceEnabled = False
    acfg.natConfig.sdpNatRewriteUse = 0
    acfg.natConfig.viaRewriteUse = 0
    acfg.natConfig.contactRewriteUse = 0
    acfg.mediaConfig.transportConfig.boundAddress = "127.0.0.1"
    acfg.mediaConfig.transportConfig.port = 42000
    acc = pj.Account()
    acc.create(acfg)

    call = Call(acc, a.out, a.play)
    prm = pj.CallOpParam(True)
    call.makeCall(a.target, prm)

    start = time.time()
    key_sent = False
    hung_up = False
    while time.time() - start < a.duration + 5:
        ep.libHandleEvents(10)
        if call.disconnected:
            break
        if call.answered_at is None:
            if time.time() - start > 5:
                print("not answered", flush=True)
                break
            continue
        t = time.time() - call.answered_at
        if not key_sent and t >= a.key_at:
            if a.dtmf == "info":
                dp = pj.CallSendDtmfParam()
                dp.digits = a.key
                dp.method = pj.PJSUA_DTMF_METHOD_SIP_INFO
                call.sendDtmf(dp)
            else:
                call.dialDtmf(a.key)
            key_sent = True
            print("key sent at %.3f epoch %.3f" % (t, time.time()), flush=True)
        if not hung_up and t >= a.duration:
            call.hangup(pj.CallOpParam(True))
            hung_up = True
    for _ in range(50):
        ep.libHandleEvents(10)
    answered = call.answered_at is not None
    call.recorder = None
    del call
    ep.libDestroy()
    sys.exit(0 if answered and key_sent else 1)


if __name__ == "__main__":
    main()
