/*
 * checkout.pml: the checkout's presumed-abort two-phase commit, for the SPIN model checker.
 *
 * One transaction (one order) between the coordinator (the order service) and two participants
 * (0 = inventory, 1 = payment), over a network that delays, reorders, duplicates and loses
 * messages, with services that crash and restart from their database.
 *
 * What mirrors what (model/README.md has the full map):
 *   coordinator durable state  tpc_transactions.state, tpc_participants.vote / acked_at
 *                              (libs/two-phase-commit/src/coordinator.ts)
 *   participant durable state  tpc_participant_transactions.state and the resource's hold
 *                              (libs/two-phase-commit/src/participant.ts, the apps' resources)
 *   one atomic block           one local Postgres transaction: the inbox record, the state change
 *                              and the outbox rows it writes commit together or not at all
 *                              (libs/inbox/src/inbox.ts handleOnce, libs/outbox/src/outbox.ts)
 *   net[]                      the outbox relays + RabbitMQ: a bag of messages in flight
 *
 * Presumed abort (what is acknowledged): only a commit. A commit is re-sent until every
 * participant acked it, and the transaction is complete then. An abort completes the transaction
 * as it is decided: it is sent once, never re-sent, and a participant applies it without an ack;
 * it is not sent at all to a participant whose vote was no (REFUSED, or the tombstone: it holds
 * nothing and will never hold; coordinator-rules.ts toldOf). A participant that never hears an
 * abort is PREPARED and asks (an inquiry, answered abort), or holds nothing.
 *
 * Build switches (spin -D...):
 *   -DBUG_NO_BARRIER        a participant without the tombstone: an abort that overtakes its
 *                           prepare is forgotten, and the late prepare reserves. FAILS.
 *   -DBUG_UNILATERAL_ABORT  a participant that releases what it holds PREPARED too long on its
 *                           own instead of asking (breaks "a yes is a promise"). FAILS.
 *   -DBUG_NO_RESEND         a coordinator that never re-sends an unacked decision: a lost ack
 *                           leaves the transaction incomplete for ever (stuck). FAILS.
 *   -DBUG_NO_TIMEOUT        a coordinator without the prepare deadline: a lost vote leaves the
 *                           participant asking and the coordinator answering "not yet" for ever
 *                           (a livelock; caught by the liveness claim). FAILS.
 *   -DBUG_NO_INQUIRY        a participant that never asks: an abort lost (never re-sent under
 *                           presumed abort) leaves it PREPARED for ever (stuck). FAILS.
 *   -DOLD_P0                mixed versions: P0 is a participant of the version before presumed
 *                           abort, which still acks every abort (the coordinator ignores it).
 *   -DSTAGED                the coordinator asks in stages (PREPARE_FIRST=payment): payment (P1)
 *                           first, the inventory (P0) only once payment voted yes; a participant
 *                           never asked is never told (tpc_held_prepares, coordinator-rules.ts).
 *                           Not with -DSYMMETRY: the participants no longer play the same part.
 *   -DREACH                 adds the ghost that the reach_barrier sanity claim needs.
 *   -DSYMMETRY              symmetry reduction, for the safety checks (see canonical()).
 *   -DMAXCRASH=n -DMAXDUP=n -DMAXLOSS=n -DCAP=n   the fault bounds (defaults below).
 * A replay of a counterexample (spin -t) prints one line per step; the checker prints nothing.
 */

/* ================================================================ bounds */

#ifndef MAXCRASH
#define MAXCRASH 2 /* crashes per run (any service, after a commit and before the broker ack) */
#endif
#ifndef MAXDUP
#define MAXDUP 2 /* messages published twice per run (outbox relay / broker at-least-once) */
#endif
#ifndef MAXLOSS
#define MAXLOSS 1 /* messages dead-lettered per run (the consumer gave up on it) */
#endif
#ifndef CAP
#define CAP 2 /* identical copies of one prepare, vote or decision in flight at once */
#endif

/* ================================================================ states */

#define NONE 0      /* no row: coordinator never began / participant never saw the transaction */
#define PREPARING 1 /* coordinator: collecting votes */
#define COMMITTED 2 /* coordinator decided commit / participant applied it */
#define ABORTED 3   /* coordinator decided abort / participant applied it (or the tombstone) */
#define PREPARED 4  /* participant voted yes and holds the reservation */
#define REFUSED 5   /* participant voted no and holds nothing */

#define YES 1 /* tpc_participants.vote */
#define NO 2

/* ================================================================ messages */

/* Message kinds; p = the participant (recipient of prepare/decision, sender of the rest). */
#define PREP(p) (0 + (p))    /* prepare          order -> p */
#define VYES(p) (2 + (p))    /* vote yes         p -> order */
#define VNO(p) (4 + (p))     /* vote no          p -> order */
#define DCOMMIT(p) (6 + (p)) /* decision commit  order -> p */
#define DABORT(p) (8 + (p))  /* decision abort   order -> p */
#define ACKC(p) (10 + (p))   /* ack of commit    p -> order */
#define ACKA(p) (12 + (p))   /* ack of abort     p -> order */
#define INQ(p) (14 + (p))    /* inquiry          p -> order */
#define NK 16

/* The decision / ack kind for outcome o (COMMITTED or ABORTED). */
#define DEC(o, p) (6 + 2 * ((o) - COMMITTED) + (p))
#define ACK(o, p) (10 + 2 * ((o) - COMMITTED) + (p))

/*
 * The network: how many copies of each kind are in flight. It is a bag: any message in flight
 * may be delivered next (reordering) or much later (delay). Copies are indistinguishable and
 * every handler must be idempotent, so at most CAPOF(k) copies are kept and a further identical
 * copy is merged. An ack or an inquiry is kept once: a second ack changes nothing (acked_at is
 * already set), and a second inquiry is what the participant's sweeper sends anyway.
 */
byte net[NK];
#define CAPOF(k) ((k) >= ACKC(0) -> 1 : CAP)

/* ================================================================ durable state */

byte cst = NONE;  /* tpc_transactions.state */
byte cvote[2];    /* tpc_participants.vote: the first vote recorded */
bool cack[2];     /* tpc_participants.acked_at IS NOT NULL */
bool casked[2];   /* a tpc_participants row: its prepare was sent (else held, tpc_held_prepares) */
byte pst[2];      /* tpc_participant_transactions.state */
byte reserved[2]; /* the resource: stock reserved / money held for this order */
byte sold[2];     /* the resource: stock sold / money captured for this order */

/* Faults used so far in this run. */
byte ncrash;
byte ndup;
byte nloss;

bool heardAbort[2]; /* ghost: the participant handled an abort (from then on it may hold nothing) */
bool ackedAbort;    /* ghost: an ack of an abort reached the coordinator (only an old participant sends one) */
#ifdef REACH
bool barrierHit; /* ghost: a late prepare met the tombstone and voted no (ALREADY_ABORTED) */
#endif

/* ================================================================ properties */

#define DECIDED (cst == COMMITTED || cst == ABORTED)
/* completed_at: an abort as decided (presumed abort: no acks); a commit once every one asked acked. */
#define COMPLETE (cst == ABORTED || ((cack[0] || !casked[0]) && (cack[1] || !casked[1])))
/* Ended: committed or aborted; refused (voted no: holds nothing, and need not hear the abort); or
 * never asked, so never holding anything (presumed abort). */
#define TERMINAL(p) (pst[p] == COMMITTED || pst[p] == ABORTED || pst[p] == REFUSED || (!casked[p] && pst[p] == NONE))
#define DONE (DECIDED && COMPLETE && TERMINAL(0) && TERMINAL(1))

/* Atomicity: never one participant committed and the other aborted... */
#define AGREE (!((pst[0] == COMMITTED && pst[1] == ABORTED) || (pst[0] == ABORTED && pst[1] == COMMITTED)))
/* ...a participant commits or aborts only what the coordinator decided... */
#define FOLLOWS(p) ((pst[p] != COMMITTED || cst == COMMITTED) && (pst[p] != ABORTED || cst == ABORTED))
/* ...the coordinator commits only after both voted yes, and then both hold (a yes is a promise). */
#define PROMISE(p) (cst != COMMITTED || (cvote[p] == YES && (pst[p] == PREPARED || pst[p] == COMMITTED)))
/* Nothing held once a commit is complete (every participant acked it). An abort is complete as
 * it is decided, before it reached anyone: what it leaves held is released when it arrives
 * (RELEASED) or when the participant asks (liveness). */
#define NOTHING_HELD (!(cst == COMMITTED && COMPLETE) || (reserved[0] == 0 && reserved[1] == 0))
/* A participant that handled an abort holds nothing for this transaction, then or ever after (the barrier). */
#define RELEASED(p) (!heardAbort[p] || reserved[p] == 0)
/* Exactly-once effects: the resource moved once, as the protocol state says (nothing lost/doubled). */
#define EFFECTS(p) (reserved[p] == (pst[p] == PREPARED -> 1 : 0) && sold[p] == (pst[p] == COMMITTED -> 1 : 0))

/*
 * Symmetry reduction (-DSYMMETRY, safety checks only): both participants run the same code, so
 * a state and the state with their roles swapped have the same futures. After each step the state
 * is put in a canonical order (the participant with the smaller key first), which halves the
 * states to explore. Not used for liveness (it does not preserve per-process fairness) nor for
 * counterexamples (the participants would swap names in the trail).
 */
#ifdef SYMMETRY
hidden int key0, key1;
hidden byte tmp;
inline keyOf(p, key) {
  key = pst[p] * 3 + cvote[p];
  key = key * 2 + cack[p];
  key = key * 2 + heardAbort[p];
  key = key * 3 + net[PREP(p)];
  key = key * 3 + net[VYES(p)];
  key = key * 3 + net[VNO(p)];
  key = key * 3 + net[DCOMMIT(p)];
  key = key * 3 + net[DABORT(p)];
  key = key * 3 + net[ACKC(p)];
  key = key * 3 + net[ACKA(p)];
  key = key * 3 + net[INQ(p)]
}
#define SWAP(a, b) tmp = a; a = b; b = tmp
inline canonical() {
  keyOf(0, key0);
  keyOf(1, key1);
  if
  :: key1 < key0 ->
    SWAP(pst[0], pst[1]); SWAP(cvote[0], cvote[1]); SWAP(cack[0], cack[1]); SWAP(casked[0], casked[1]);
    SWAP(reserved[0], reserved[1]); SWAP(sold[0], sold[1]); SWAP(heardAbort[0], heardAbort[1]);
    SWAP(net[PREP(0)], net[PREP(1)]); SWAP(net[VYES(0)], net[VYES(1)]); SWAP(net[VNO(0)], net[VNO(1)]);
    SWAP(net[DCOMMIT(0)], net[DCOMMIT(1)]); SWAP(net[DABORT(0)], net[DABORT(1)]);
    SWAP(net[ACKC(0)], net[ACKC(1)]); SWAP(net[ACKA(0)], net[ACKA(1)]); SWAP(net[INQ(0)], net[INQ(1)])
  :: else
  fi
}
#else
#define canonical() skip
#endif

/* Checked after every local transaction: every state change happens in one. */
inline check() {
  assert(AGREE);
  assert(FOLLOWS(0) && FOLLOWS(1));
  assert(PROMISE(0) && PROMISE(1));
  assert(NOTHING_HELD);
  assert(RELEASED(0) && RELEASED(1));
  assert(EFFECTS(0) && EFFECTS(1));
  canonical()
}

/* Termination: under weak fairness (and the faults are bounded, so they stop), every run ends
 * decided, complete (a commit acked by both), both participants COMMITTED, ABORTED or REFUSED (or
 * never asked), nothing left PREPARED. */
ltl live { <> [] DONE }

/* Sanity: each of these must be VIOLATED, i.e. the outcome is reachable. A model that cannot
 * commit, or never exercises the barrier, proves nothing. */
ltl reach_commit { [] !(cst == COMMITTED && DONE) }
ltl reach_abort { [] !(cst == ABORTED && DONE) }
ltl reach_commit_all_faults { [] !(cst == COMMITTED && DONE && ncrash == MAXCRASH && ndup == MAXDUP && nloss == MAXLOSS) }
/* Presumed abort: a run aborts and completes with no ack of an abort ever received. Not
 * reachable (FAILS) if completing an abort required its acks. */
ltl reach_abort_without_ack { [] !(cst == ABORTED && DONE && !ackedAbort) }
#ifdef REACH
ltl reach_barrier { [] !(barrierHit && DONE) }
#endif

/* ================================================================ transport */

/* Writes a message to the outbox of the current local transaction (two-phase-commit outgoing.ts
 * send -> outbox writeToOutbox): published iff the transaction commits, which here holds because
 * the caller is one atomic block. The relay may publish it twice: a crash between the broker's
 * confirm and marking the row sent (outbox-relay.ts publishBatch), or a lost confirm. */
inline send(k) {
  if
  :: net[k] < CAPOF(k) -> net[k]++
  :: else -> skip /* an identical copy is in flight: merged */
  fi;
  if
  :: ndup < MAXDUP && net[k] < CAPOF(k) -> ndup++; net[k]++; printf("    (published twice)\n")
  :: true
  fi
}

/* Takes an in-flight message of kind K for either participant p (from the bag: any of them). */
#define TAKE(K) \
  if \
  :: net[K(0)] > 0 -> p = 0 \
  :: net[K(1)] > 0 -> p = 1 \
  fi; \
  net[K(p)]--

#define ANY(K) (net[K(0)] + net[K(1)] > 0)

/* After the handler's transaction commits the consumer acks the delivery (messaging consumer.ts).
 * A crash in between (and a restart from the database): the broker redelivers the message. A
 * crash anywhere else loses nothing: an open transaction rolls back and its message stays queued,
 * and what a service keeps only in memory (timers, relay wake-ups) is not protocol state. A
 * service that is down is one that takes no steps, which the interleaving already allows. */
inline brokerAck(k) {
  if
  :: true
  :: ncrash < MAXCRASH && net[k] < CAPOF(k) -> ncrash++; net[k]++; printf("    (crash before the broker ack: redelivered)\n")
  fi
}

/* One delivery, handled in one local transaction (the inbox's handleOnce), or dead-lettered (the
 * consumer gave up after maxAttempts). The inbox would skip a duplicate (same message id); the
 * model handles it again, as after the inbox record's retention, so handlers must be idempotent by
 * state alone. The inbox skipping a duplicate is the run where it was never made, also explored. */
#define DELIVER(k, HANDLE) \
  if \
  :: HANDLE; brokerAck(k) \
  :: nloss < MAXLOSS -> nloss++; printf("    (dead-lettered)\n") \
  fi; \
  check()

/* ================================================================ coordinator */

/* Coordinator.decide: in the caller's transaction, record the outcome (the order's status via
 * hooks.onDecided); a commit arms next_resend_at, an abort completes (needsAcks); write the
 * decision to the outbox of every participant asked, an abort not to one that voted no (toldOf). */
#define TOLD(o, p) (casked[p] && ((o) == COMMITTED || cvote[p] != NO))
inline decide(o) {
  assert(cst == PREPARING); /* decided once, never changed */
  cst = o;
  if
  :: o == COMMITTED -> printf("    coordinator: COMMITTED, sends commit to the participants asked\n")
  :: else -> printf("    coordinator: ABORTED (complete), sends abort to the participants asked that did not vote no\n")
  fi;
  if
  :: TOLD(o, 0) -> send(DEC(o, 0))
  :: else -> printf("    P0 never asked, or voted no: not told\n")
  fi;
  if
  :: TOLD(o, 1) -> send(DEC(o, 1))
  :: else -> printf("    P1 voted no: not told\n")
  fi
}

/* Coordinator.onVote */
inline onVote(p, v) {
  printf("coordinator <- vote %d from P%d (1 yes, 2 no)\n", v, p);
  if
  :: cst == NONE -> /* presumed abort: an unknown transaction; a "yes" hears abort */
    if
    :: v == YES -> send(DABORT(p))
    :: else
    fi
  :: else ->
    if
    :: cvote[p] == NONE -> cvote[p] = v /* UPDATE ... WHERE vote IS NULL */
    :: else
    fi;
    if
    :: cst == PREPARING && v == NO -> decide(ABORTED) /* the first "no" aborts */
    :: cst == PREPARING && v == YES && cvote[0] == YES && cvote[1] == YES -> decide(COMMITTED) /* pending === 0 */
    /* The last yes of a stage: the next stage's prepare goes out, in this transaction. */
    :: cst == PREPARING && v == YES && !casked[0] && cvote[1] == YES ->
      casked[0] = true; send(PREP(0)); printf("    payment said yes: asks P0\n")
    /* A late yes is not answered: the abort was sent to that participant with the decision (it
       had not voted no); if that abort is lost, its inquiry is answered. */
    :: cst == ABORTED && v == YES -> printf("    late yes from P%d: its abort is on its way (lost: it asks)\n", p)
    :: else /* waiting for the other vote, or a late / repeated vote: nothing */
    fi
  fi
}

/* Coordinator.onAck */
inline onAck(p, o) {
  printf("coordinator <- ack from P%d\n", p);
  if
  :: cst == NONE /* unknown transaction: nothing to record */
  :: else ->
    assert(cst == o); /* a participant acks only the outcome it was sent */
    if
    :: o == COMMITTED -> cack[p] = true /* completed_at is set once both are acked: COMPLETE */
    :: else -> ackedAbort = true; printf("    an ack of an abort (an older participant): ignored\n")
    fi
  fi
}

/* Coordinator.onInquiry */
inline onInquiry(p) {
  printf("coordinator <- inquiry from P%d\n", p);
  if
  :: cst == NONE -> send(DABORT(p)) /* presumed abort */
  :: cst == PREPARING -> /* still collecting votes: only a passed deadline decides */
    if
#ifndef BUG_NO_TIMEOUT
    :: printf("    deadline passed: TIMEOUT\n"); decide(ABORTED)
#endif
    :: true /* not yet: the participant asks again later */
    fi
  :: cst == COMMITTED -> send(DCOMMIT(p))
  :: cst == ABORTED -> send(DABORT(p))
  fi
}

/* The order service: POST /orders, then its consumer (CoordinatorRunner registers onVote, onAck,
 * onInquiry). Replicas and prefetch run several handlers at once, but each locks the transaction
 * row first, so their transactions serialize into these atomic steps. */
active proctype Coordinator() {
  byte p;
  /* POST /orders in ONE local transaction (orders.service.ts place -> Coordinator.begin): the
   * order PENDING, tpc_transactions PREPARING, one prepare per participant in the outbox. */
  atomic {
    cst = PREPARING;
#ifdef STAGED
    printf("POST /orders: PREPARING, prepare to P1 (payment first), P0's held\n");
    casked[1] = true;
    send(PREP(1))
#else
    printf("POST /orders: PREPARING, prepare to both\n");
    casked[0] = true;
    casked[1] = true;
    send(PREP(0));
    send(PREP(1))
#endif
  };
end:
  do
  :: atomic { ANY(VYES) -> TAKE(VYES); DELIVER(VYES(p), onVote(p, YES)); p = 0 }
  :: atomic { ANY(VNO) -> TAKE(VNO); DELIVER(VNO(p), onVote(p, NO)); p = 0 }
  :: atomic { ANY(ACKC) -> TAKE(ACKC); DELIVER(ACKC(p), onAck(p, COMMITTED)); p = 0 }
  :: atomic { ANY(ACKA) -> TAKE(ACKA); DELIVER(ACKA(p), onAck(p, ABORTED)); p = 0 }
  :: atomic { ANY(INQ) -> TAKE(INQ); DELIVER(INQ(p), onInquiry(p)); p = 0 }
  od
}

/* CoordinatorRunner.sweep: a timer beside the consumer. Time is abstracted away: the deadline
 * may pass at any moment, and an unacked decision may be re-sent at any moment while neither it
 * nor its ack is in flight (the backoff grows past the round trip; a re-sent copy crossing an ack
 * is the late duplicate that MAXDUP and inquiries produce anyway). Weak fairness: a sweep that
 * stays possible eventually happens (the deadline passes; re-sends go on until acked). */
#define RESEND_DUE(p) (cst == COMMITTED && !cack[p] && net[DCOMMIT(p)] == 0 && net[ACKC(p)] == 0) /* never an abort */
active proctype CoordinatorSweeper() {
end:
  do
#ifndef BUG_NO_TIMEOUT
  :: atomic { cst == PREPARING -> printf("sweeper: deadline passed: TIMEOUT\n"); decide(ABORTED); check() } /* abortExpired */
#endif
#ifndef BUG_NO_RESEND
  :: atomic { RESEND_DUE(0) -> printf("sweeper: re-sends the commit to P0\n"); send(DCOMMIT(0)); check() } /* resendUnacked */
  :: atomic { RESEND_DUE(1) -> printf("sweeper: re-sends the commit to P1\n"); send(DCOMMIT(1)); check() }
#endif
  od
}

/* ================================================================ participants */

/* Participant.onPrepare -> Participant.prepare, then the vote into the outbox. */
inline onPrepare(p) {
  printf("P%d <- prepare\n", p);
  if
  :: pst[p] == NONE -> /* a fresh row */
    if
    :: pst[p] = PREPARED; reserved[p]++; send(VYES(p)); printf("    reserves, PREPARED, votes yes\n") /* resource.prepare: a promise */
    :: pst[p] = REFUSED; send(VNO(p)); printf("    REFUSED (out of stock), votes no\n") /* or no funds / deadline passed */
    fi
  /* seen before: answer from the recorded state */
  :: pst[p] == PREPARED || pst[p] == COMMITTED -> send(VYES(p)); printf("    seen: votes yes again\n")
  :: pst[p] == REFUSED -> send(VNO(p)); printf("    seen: votes no again\n")
  :: pst[p] == ABORTED -> /* the barrier */
#ifdef REACH
    barrierHit = true;
#endif
    send(VNO(p)); printf("    tombstone: votes no ALREADY_ABORTED, holds nothing\n")
  fi
}

/* Participant.onDecision -> Participant.apply, then the ack of a commit into the outbox (an
 * abort is not acked: presumed abort; an older participant, -DOLD_P0, acks it too). */
inline onDecision(p, o) {
  if
  :: o == COMMITTED -> printf("P%d <- commit\n", p)
  :: else -> printf("P%d <- abort\n", p); heardAbort[p] = true
  fi;
  if
  :: pst[p] == NONE -> /* never prepared here */
    assert(o == ABORTED); /* a commit would be a PoisonMessageError: must be unreachable */
#ifdef BUG_NO_BARRIER
    printf("    BUG: never prepared, ignores the abort (no tombstone)\n")
#else
    pst[p] = ABORTED; printf("    never prepared: writes the tombstone (ABORTED)\n")
#endif
  :: pst[p] == o -> printf("    already applied\n")
  :: pst[p] == PREPARED && o == COMMITTED -> reserved[p]--; sold[p]++; pst[p] = COMMITTED; printf("    COMMITTED (reserved -> sold)\n")
  :: pst[p] == PREPARED && o == ABORTED -> reserved[p]--; pst[p] = ABORTED; printf("    ABORTED (released)\n")
  :: pst[p] == REFUSED && o == ABORTED -> pst[p] = ABORTED; printf("    ABORTED (held nothing)\n")
  :: else -> assert(false) /* PoisonMessageError (commit after a refusal, abort after a commit): unreachable */
  fi;
  if
  :: o == COMMITTED -> send(ACKC(p)); printf("    acks the commit\n")
#ifdef OLD_P0
  :: o == ABORTED && p == 0 -> send(ACKA(p)); printf("    (older version) acks the abort\n")
#endif
  :: else /* an abort: no ack */
  fi
}

/* The inventory (p = 0) and payment (p = 1) services: the consumer (ParticipantRunner registers
 * onPrepare and onDecision) and the sweeper (Participant.inquireInDoubt: PREPARED too long, ask
 * the coordinator; again later while no answer is on its way). */
active [2] proctype Participant() {
  byte p = _pid - 2; /* after Coordinator (0) and CoordinatorSweeper (1) */
end:
  do
  :: atomic { net[PREP(p)] > 0 -> net[PREP(p)]--; DELIVER(PREP(p), onPrepare(p)) }
  :: atomic { net[DCOMMIT(p)] > 0 -> net[DCOMMIT(p)]--; DELIVER(DCOMMIT(p), onDecision(p, COMMITTED)) }
  :: atomic { net[DABORT(p)] > 0 -> net[DABORT(p)]--; DELIVER(DABORT(p), onDecision(p, ABORTED)) }
#ifndef BUG_NO_INQUIRY
  :: atomic { pst[p] == PREPARED && net[INQ(p)] == 0 && net[DCOMMIT(p)] + net[DABORT(p)] == 0 ->
#ifdef BUG_UNILATERAL_ABORT
      reserved[p]--; pst[p] = ABORTED; printf("P%d BUG: PREPARED too long, releases on its own\n", p);
#else
      printf("P%d: PREPARED too long, asks the coordinator\n", p); send(INQ(p));
#endif
      check() }
#endif
  od
}

/* ================================================================ quiescence */

/* When nothing can move any more (SPIN's timeout: no other statement is executable), the run
 * must have ended DONE: decided, complete, both participants terminal. SPIN's weak fairness
 * only judges infinite runs, so a run that gets stuck is caught here, in every check. */
active proctype Quiescence() {
  timeout -> assert(DONE)
}
