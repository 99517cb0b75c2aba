/*
 * checkout.pml: the checkout's presumed-abort two-phase commit, for the SPIN model checker.
 *
 * One transaction (one order): the coordinator (order service) and two participants
 * (0 = inventory, 1 = payment), over a network that delays, reorders, duplicates and (rarely)
 * loses messages, with services that crash and restart from their database.
 *
 * What mirrors what (see model/README.md for the full map):
 *   coordinator durable state  = tpc_transactions.state, tpc_participants.vote / acked_at
 *                                (libs/two-phase-commit/src/coordinator.ts)
 *   participant durable state  = tpc_participant_transactions.state and the resource's
 *                                reservation (libs/two-phase-commit/src/participant.ts,
 *                                apps/inventory/.../stock-reservations.ts, apps/payment/...)
 *   one atomic block           = one local Postgres transaction: inbox record, state change and
 *                                the outbox rows it writes commit together or not at all
 *                                (libs/inbox/src/inbox.ts handleOnce, libs/outbox/src/outbox.ts)
 *   net[]                      = RabbitMQ + the outbox relays: a bag of messages in flight
 *
 * Build switches (spin -D...):
 *   -DBUG_NO_BARRIER   participant without the tombstone: an abort that overtakes its prepare
 *                      is acked and forgotten, and the late prepare reserves. Must FAIL.
 *   -DMAXCRASH=n -DMAXDUP=n -DMAXLOSS=n -DCAP=n   fault bounds (defaults below).
 */

/* ---------------------------------------------------------------- bounds */

#ifndef MAXCRASH
#define MAXCRASH 2 /* process crashes per run (coordinator or participants) */
#endif
#ifndef MAXDUP
#define MAXDUP 2 /* extra copies published per run (relay re-publish / broker redelivery) */
#endif
#ifndef MAXLOSS
#define MAXLOSS 1 /* messages dead-lettered per run (handler gave up, poison) */
#endif
#ifndef CAP
#define CAP 2 /* identical copies of one message kind in flight at once; more are merged */
#endif
#ifndef TCAP
#define TCAP 1 /* a timer (re-send, inquiry) fires only while fewer copies than this are in flight */
#endif

/* ---------------------------------------------------------------- states */

#define NONE 0      /* no row (coordinator: never begun; participant: never seen) */
#define PREPARING 1 /* coordinator: collecting votes */
#define COMMITTED 2 /* coordinator decided commit / participant applied it */
#define ABORTED 3   /* coordinator decided abort / participant applied it, or tombstone */
#define PREPARED 4  /* participant voted yes and holds the reservation */
#define REFUSED 5   /* participant voted no and holds nothing */

#define YES 1 /* tpc_participants.vote */
#define NO 2

/* Services, for up[]: the two participants by index, the coordinator last. */
#define C 2

/* ---------------------------------------------------------------- messages */

/* Message kinds; p = participant (recipient of prepare/decision, sender of vote/ack/inquiry). */
#define PREP(p) (0 + (p))     /* prepare        order -> p         */
#define VYES(p) (2 + (p))     /* vote yes       p -> order         */
#define VNO(p) (4 + (p))      /* vote no        p -> order         */
#define DCOMMIT(p) (6 + (p))  /* decision commit order -> p       */
#define DABORT(p) (8 + (p))   /* decision abort  order -> p       */
#define ACKC(p) (10 + (p))    /* ack of commit  p -> order         */
#define ACKA(p) (12 + (p))    /* ack of abort   p -> order         */
#define INQ(p) (14 + (p))     /* inquiry        p -> order         */
#define NK 16

/* The decision / ack kind for outcome o (COMMITTED or ABORTED). */
#define DEC(o, p) (6 + 2 * ((o) - COMMITTED) + (p))
#define ACK(o, p) (10 + 2 * ((o) - COMMITTED) + (p))

/*
 * The network: how many copies of each kind are in flight. A bag, so any in-flight message can
 * be delivered next (reordering) or much later (delay). At most CAP identical copies are kept:
 * copies are indistinguishable and every handler must be idempotent, so a further identical
 * copy is merged into those already in flight.
 */
byte net[NK];

/* ---------------------------------------------------------------- durable state */

byte cst = NONE;   /* tpc_transactions.state */
byte cvote[2];     /* tpc_participants.vote (the first vote recorded) */
bool cack[2];      /* tpc_participants.acked_at IS NOT NULL */
byte pst[2];       /* tpc_participant_transactions.state */
byte reserved[2];  /* the resource: stock reserved / money held for this order */
byte sold[2];      /* the resource: stock sold / money captured */

/* ---------------------------------------------------------------- faults and liveness */

bool up[3];     /* volatile: the service's process is running */
byte ncrash;    /* faults used so far, each bounded above */
byte ndup;
byte nloss;

/* Ghosts, only to show that the interesting paths are reachable. */
bool tombstoned;    /* an abort overtook a prepare and left the barrier */
bool barrierHit;    /* a late prepare met the barrier and voted no (ALREADY_ABORTED) */

/* ---------------------------------------------------------------- properties */

#define TERMINAL(p) (pst[p] == COMMITTED || pst[p] == ABORTED)
#define DECIDED (cst == COMMITTED || cst == ABORTED)
#define COMPLETE (cack[0] && cack[1]) /* tpc_transactions.completed_at is set */
#define DONE (DECIDED && COMPLETE && TERMINAL(0) && TERMINAL(1))

/* Atomicity: never one participant committed and the other aborted... */
#define AGREE (!((pst[0] == COMMITTED && pst[1] == ABORTED) || (pst[0] == ABORTED && pst[1] == COMMITTED)))
/* ...a participant commits / aborts only what the coordinator decided... */
#define FOLLOWS(p) ((pst[p] != COMMITTED || cst == COMMITTED) && (pst[p] != ABORTED || cst == ABORTED))
/* ...the coordinator commits only after both voted yes, and then finds both holding (a yes is a promise). */
#define PROMISE(p) (cst != COMMITTED || (cvote[p] == YES && (pst[p] == PREPARED || pst[p] == COMMITTED)))
/* Nothing held: once every participant acked, no reservation is left. */
#define NOTHING_HELD (!COMPLETE || (reserved[0] == 0 && reserved[1] == 0))
/* Exactly-once effects: the resource moved once, matching the protocol state (stock/money conserved). */
#define EFFECTS(p) (reserved[p] == (pst[p] == PREPARED -> 1 : 0) && sold[p] == (pst[p] == COMMITTED -> 1 : 0))

/* Checked at the end of every local transaction (every state change happens in one). */
inline check() {
  assert(AGREE);
  assert(FOLLOWS(0) && FOLLOWS(1));
  assert(PROMISE(0) && PROMISE(1));
  assert(NOTHING_HELD);
  assert(EFFECTS(0) && EFFECTS(1))
}

/* Liveness: under weak fairness, once the (bounded) faults have happened, the run ends decided,
 * acknowledged by both, both participants terminal and nothing PREPARED. */
ltl live { <> [] DONE }

/* Sanity: each of these must be VIOLATED (the outcome is reachable); a model that cannot
 * commit, or never exercises the barrier, would prove nothing. */
ltl reach_commit { [] !(cst == COMMITTED && DONE) }
ltl reach_abort { [] !(cst == ABORTED && DONE) }
ltl reach_barrier { [] !(barrierHit && DONE) }
ltl reach_commit_after_crashes { [] !(cst == COMMITTED && DONE && ncrash == MAXCRASH) }

/* ---------------------------------------------------------------- transport */

/* Write a message to the outbox of the current local transaction (libs/two-phase-commit/src/
 * outgoing.ts send -> libs/outbox writeToOutbox). It is published iff the transaction commits:
 * here, because the caller is one atomic block. The relay may publish it twice (crash between the
 * broker's confirm and marking the row sent: outbox-relay.ts publishBatch). */
inline send(k) {
  if
  :: net[k] < CAP -> net[k]++
  :: else -> skip /* an identical copy is in flight: merged */
  fi;
  if
  :: ndup < MAXDUP && net[k] < CAP -> ndup++; net[k]++ /* published twice */
  :: true
  fi
}

/* Take one in-flight message of kind K for some participant p (the bag: any of them). */
#define TAKE(K) \
  if \
  :: net[K(0)] > 0 -> p = 0 \
  :: net[K(1)] > 0 -> p = 1 \
  fi; \
  net[K(p)]--

#define ANY(K) (net[K(0)] + net[K(1)] > 0)

/* After the handler's transaction committed the consumer acks the delivery to the broker
 * (messaging/consumer.ts). A crash in between: the broker redelivers the same message; its id is
 * now in the inbox. */
inline brokerAck(s, k) {
  if
  :: true
  :: ncrash < MAXCRASH -> ncrash++; up[s] = false; if :: net[k] < CAP -> net[k]++ :: else fi
  fi
}

/* The handler failed maxAttempts times (or the message was poison): dead-letter queue, no effect. */
#define DEADLETTER (nloss < MAXLOSS) -> nloss++

/* ---------------------------------------------------------------- coordinator */

/* Coordinator.decide: in the caller's transaction, record the outcome (the order's status via
 * onDecided), set next_resend_at, and write the decision to every participant's outbox. */
inline decide(o) {
  assert(cst == PREPARING); /* a decision is made once and never changes */
  cst = o;
  send(DEC(o, 0));
  send(DEC(o, 1))
}

/* Coordinator.onVote */
inline onVote(p, v) {
  if
  :: cst == NONE -> /* presumed abort: unknown transaction, a "yes" hears abort */
    if
    :: v == YES -> send(DABORT(p))
    :: else
    fi
  :: else ->
    if
    :: cvote[p] == NONE -> cvote[p] = v /* UPDATE ... AND vote IS NULL */
    :: else
    fi;
    if
    :: cst == PREPARING && v == NO -> decide(ABORTED) /* the first "no" aborts */
    :: cst == PREPARING && v == YES ->
      if
      :: cvote[0] == YES && cvote[1] == YES -> decide(COMMITTED) /* pending === 0 */
      :: else
      fi
    :: cst == ABORTED && v == YES -> send(DABORT(p)) /* a late "yes" hears the abort again */
    :: else /* late or repeated vote: nothing */
    fi
  fi
}

/* Coordinator.onAck */
inline onAck(p, o) {
  if
  :: cst == NONE -> skip /* unknown transaction: nothing to record */
  :: else ->
    assert(cst == o); /* a participant only acks the outcome it was sent */
    cack[p] = true /* completed_at is set when both are acked: COMPLETE */
  fi
}

/* Coordinator.onInquiry */
inline onInquiry(p) {
  if
  :: cst == NONE -> send(DABORT(p)) /* presumed abort */
  :: cst == PREPARING -> /* still collecting votes: only a passed deadline decides */
    if
    :: decide(ABORTED) /* deadline <= now: TIMEOUT */
    :: skip /* not yet: the participant will ask again */
    fi
  :: cst == COMMITTED -> send(DCOMMIT(p))
  :: cst == ABORTED -> send(DABORT(p))
  fi
}

/* The order service's consumer: one delivery at a time, each in its own local transaction
 * (the inbox's handleOnce). A duplicate (same message id) would be skipped by the inbox; here it
 * is handled again, as after the inbox record's retention, so the handlers must be idempotent by
 * state alone (the inbox skipping it is the run in which the duplicate was never made). */
proctype CoordinatorConsumer() {
  byte p;
end:
  do
  :: atomic { up[C] && ANY(VYES) -> TAKE(VYES);
      if
      :: onVote(p, YES); brokerAck(C, VYES(p))
      :: DEADLETTER
      fi;
      check(); p = 0 }
  :: atomic { up[C] && ANY(VNO) -> TAKE(VNO);
      if
      :: onVote(p, NO); brokerAck(C, VNO(p))
      :: DEADLETTER
      fi;
      check(); p = 0 }
  :: atomic { up[C] && ANY(ACKC) -> TAKE(ACKC);
      if
      :: onAck(p, COMMITTED); brokerAck(C, ACKC(p))
      :: DEADLETTER
      fi;
      check(); p = 0 }
  :: atomic { up[C] && ANY(ACKA) -> TAKE(ACKA);
      if
      :: onAck(p, ABORTED); brokerAck(C, ACKA(p))
      :: DEADLETTER
      fi;
      check(); p = 0 }
  :: atomic { up[C] && ANY(INQ) -> TAKE(INQ);
      if
      :: onInquiry(p); brokerAck(C, INQ(p))
      :: DEADLETTER
      fi;
      check(); p = 0 }
  od
}

/* CoordinatorRunner.sweep (two-phase-commit.module.ts), a timer beside the consumer. Time is
 * abstracted away: the deadline may pass at any moment, and a re-send may be due at any moment
 * (backoff with jitter). Weak fairness makes a continuously enabled sweep happen eventually. */
proctype CoordinatorSweeper() {
end:
  do
  :: atomic { up[C] && cst == PREPARING -> decide(ABORTED); check() } /* abortExpired: TIMEOUT */
  :: atomic { up[C] && DECIDED && !cack[0] && net[DEC(cst, 0)] < TCAP -> send(DEC(cst, 0)); check() } /* resendUnacked */
  :: atomic { up[C] && DECIDED && !cack[1] && net[DEC(cst, 1)] < TCAP -> send(DEC(cst, 1)); check() }
  od
}

/* ---------------------------------------------------------------- participants */

/* Participant.onPrepare -> Participant.prepare, then the vote to the outbox. */
inline onPrepare(p) {
  if
  :: pst[p] == NONE -> /* fresh row */
    if
    :: pst[p] = PREPARED; reserved[p]++; send(VYES(p)) /* resource.prepare reserved: a promise */
    :: pst[p] = REFUSED; send(VNO(p)) /* out of stock / insufficient funds / deadline passed: rolled back */
    fi
  /* seen before: answer from the recorded state */
  :: pst[p] == PREPARED || pst[p] == COMMITTED -> send(VYES(p))
  :: pst[p] == REFUSED -> send(VNO(p))
  :: pst[p] == ABORTED -> barrierHit = true; send(VNO(p)) /* the barrier: ALREADY_ABORTED */
  fi
}

/* Participant.onDecision -> Participant.apply, then the ack to the outbox. */
inline onDecision(p, o) {
  if
  :: pst[p] == NONE -> /* never prepared here */
    assert(o == ABORTED); /* a commit would be a PoisonMessageError: must be unreachable */
#ifdef BUG_NO_BARRIER
    skip /* BUG: no tombstone; the abort is acked and forgotten */
#else
    pst[p] = ABORTED; tombstoned = true /* the tombstone: a late prepare will vote no */
#endif
  :: pst[p] == o -> skip /* already applied: just ack again */
  :: pst[p] == PREPARED && o == COMMITTED -> reserved[p]--; sold[p]++; pst[p] = COMMITTED /* resource.commit */
  :: pst[p] == PREPARED && o == ABORTED -> reserved[p]--; pst[p] = ABORTED /* resource.abort */
  :: pst[p] == REFUSED && o == ABORTED -> pst[p] = ABORTED
  :: else -> assert(false) /* PoisonMessageError (commit after refusing, abort after committing...) */
  fi;
  send(ACK(o, p))
}

/* The participant's consumer (one per service). */
proctype ParticipantConsumer(byte p) {
end:
  do
  :: atomic { up[p] && net[PREP(p)] > 0 -> net[PREP(p)]--;
      if
      :: onPrepare(p); brokerAck(p, PREP(p))
      :: DEADLETTER
      fi;
      check() }
  :: atomic { up[p] && net[DCOMMIT(p)] > 0 -> net[DCOMMIT(p)]--;
      if
      :: onDecision(p, COMMITTED); brokerAck(p, DCOMMIT(p))
      :: DEADLETTER
      fi;
      check() }
  :: atomic { up[p] && net[DABORT(p)] > 0 -> net[DABORT(p)]--;
      if
      :: onDecision(p, ABORTED); brokerAck(p, DABORT(p))
      :: DEADLETTER
      fi;
      check() }
  od
}

/* ParticipantRunner.sweep -> Participant.inquireInDoubt: held PREPARED too long, ask. */
proctype ParticipantSweeper(byte p) {
end:
  do
  :: atomic { up[p] && pst[p] == PREPARED && net[INQ(p)] < TCAP -> send(INQ(p)); check() }
  od
}

/* ---------------------------------------------------------------- crashes */

/* Any service may crash between local transactions (a crash inside one rolls it back and the
 * broker redelivers the message: the same as not having taken it) and restarts from its
 * database. What a service keeps only in memory (timers, the relay's wake-up, the delivery in
 * hand) is not protocol state: losing it only delays. The crash after a commit and before the
 * broker ack is in brokerAck. */
proctype Faults() {
end:
  do
  :: atomic { ncrash < MAXCRASH && up[C] -> ncrash++; up[C] = false }
  :: atomic { ncrash < MAXCRASH && up[0] -> ncrash++; up[0] = false }
  :: atomic { ncrash < MAXCRASH && up[1] -> ncrash++; up[1] = false }
  :: atomic { !up[C] -> up[C] = true } /* restart */
  :: atomic { !up[0] -> up[0] = true }
  :: atomic { !up[1] -> up[1] = true }
  od
}

/* ---------------------------------------------------------------- the run */

init {
  atomic {
    up[0] = true; up[1] = true; up[C] = true;
    /* POST /orders (orders.service.ts place -> Coordinator.begin), one local transaction:
     * the order PENDING, tpc_transactions PREPARING, one prepare per participant in the outbox. */
    cst = PREPARING;
    send(PREP(0));
    send(PREP(1));
    run CoordinatorConsumer();
    run CoordinatorSweeper();
    run ParticipantConsumer(0);
    run ParticipantConsumer(1);
    run ParticipantSweeper(0);
    run ParticipantSweeper(1);
    run Faults()
  }
}
