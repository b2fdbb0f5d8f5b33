/*
 * publication.pml -- Promela model of perago's fenced publication of a
 * workspace change onto a lakeFS branch (ADR 0005), rule "V2".
 *
 * One Conductor task reference (one workflow instance) with up to N attempts
 * (retry 0..N-1), one lakeFS target branch whose first-parent chain starts at
 * the input ref A, at most one foreign commit F appended by someone else at an
 * arbitrary moment, and the `perago gc --lakefs` reconciler, which runs once
 * the task is finished and every attempt process has ended.
 *
 * Variants (spin -D...):
 *   (none)        V2 rule, the main model: every property must hold.
 *   OLD_RULE      the first rule: no fence immediately before the moves, and a
 *                 head that is a child of A and a publication of this task (any
 *                 attempt, any Conductor state) is hard-reset away without
 *                 reading that attempt's Conductor state.  Must fail.
 *   RESET_WINDOW  "check head == X" and "hard reset" are two lakeFS calls
 *                 (lakeFS hard_reset has no compare-and-swap): the foreign
 *                 commit can land in between.  Must violate P3.
 *   FENCE_WINDOW  the fence read and the write it guards (merge / reset) are
 *                 two calls (the "soft fence" of ADR 0005): Conductor may time
 *                 the attempt out in between and the write still happens.
 *   N=<k>         number of attempts (default 3).
 *   PROPS=<mask>  properties asserted: 1 = P1, 2 = P2, 4 = P3, 8 = P4, 16 = P5
 *                 (default 31 = all); check.sh uses single bits to tell which
 *                 properties a failing variant violates.
 *   NO_FOREIGN    no foreign writer (isolates the OLD_RULE reset scenario).
 *   NO_CRASH      workers never crash (debugging only).
 *
 * Assumptions of V2 (each one has a variant that drops it):
 *   - check-head-and-reset is ONE atomic step            (RESET_WINDOW drops it);
 *   - the fence read immediately before a write and the write are ONE atomic
 *     step, i.e. the Conductor lease does not expire within that round trip
 *                                                        (FENCE_WINDOW drops it).
 *
 * Properties:
 *   P1  when Conductor accepts COMPLETED(X) of attempt i: X is on the chain and
 *       is a publication of attempt i, or X == A (no-op); no other publication
 *       of the task is on the chain.
 *   P2  final state (all processes incl. the reconciler ended): task COMPLETED
 *       with X -> the chain holds exactly one publication of the task, X (none
 *       if X == A); task terminally failed -> every publication of the task on
 *       the chain lies under the foreign commit.
 *   P3  the foreign commit, once appended, stays on the chain (checked at every
 *       hard reset, the only operation that removes commits).
 *   P4  no fenced write (merge, reset, rollback of an abandoned publication) by
 *       an attempt after Conductor accepted COMPLETED of another attempt (the
 *       rollback of the attempt's own merge commit is exempt).
 *   P5  an accepted output X != A is never removed from the chain.
 *
 * Commit ids: 0 = A, 1 = F (foreign), 2+i = C_i (staged commit of attempt i,
 * parent A, put in place by hard reset), 5+i = m_i (merge commit of attempt i,
 * parent = the head when the merge ran).  Each attempt stages at most one C_i
 * and merges at most once, so ids are unique and commits immutable: par[c] is
 * written once, when c is created, and a hard reset to c rebuilds the branch
 * as c's first-parent chain.
 *
 * Every transition carries a tag  T:<name>  in a comment (model/README.md maps
 * them to the protocol steps).  printf output appears only when a trail is
 * replayed (spin -T -t); it does not change the state space.
 */

#ifndef N
#define N 3
#endif
#ifndef PROPS
#define PROPS 31
#endif
#define CAP        7        /* chain capacity: at most 7 commits exist */
#define NCOMMITS   8
#define MAXROUNDS  4        /* decision loop bound (step 2)             */
#define NOBODY     255

/* Conductor status of one attempt */
#define NONE        0       /* not created yet: a later retry           */
#define SCHEDULED   1       /* not used: creation and the worker's poll are
                               one step, the attempt starts IN_PROGRESS  */
#define IN_PROGRESS 2
#define COMPLETED   3
#define FAILED      4
#define TIMED_OUT   5

/* commit ids */
#define A           0
#define F           1
#define C(k)        (2 + (k))
#define M(k)        (5 + (k))
#define ISPUB(c)    ((c) >= 2)                          /* publication of this task */
#define OWNER(c)    ((c) >= 5 -> (c) - 5 : (c) - 2)     /* its attempt (if ISPUB)   */

#define HEAD          (clen == 0 -> A : chain[clen - 1])
#define ABANDONED(j)  (st[j] == FAILED || st[j] == TIMED_OUT)
#define TASK_FINISHED (winner != NOBODY || st[N - 1] == FAILED || st[N - 1] == TIMED_OUT)

/* ------------------------------------------------------------------ state */

byte st[N];                 /* Conductor status of each attempt            */
byte winner = NOBODY;       /* attempt whose COMPLETED Conductor accepted  */
byte outp = NOBODY;         /* the output ref Conductor accepted           */
byte par[NCOMMITS];         /* first parent of each commit (A for C_i)     */
byte chain[CAP];            /* first-parent chain after A, head = chain[clen-1] */
byte clen;
bool fappended;             /* monitor: the foreign commit was appended    */
bool fdone;                 /* the foreign writer has finished             */
byte nalive;                /* attempt processes not ended yet             */

/* scratch, used only inside one atomic sequence (not part of the state) */
hidden byte sx, su, sv, snp, shp, seen, onc;

/* named property results: pan prints the name of a violated assertion */
hidden byte P1_completed_output_is_sole_publication_on_branch;
hidden byte P2_final_branch_matches_task_outcome;
hidden byte P3_foreign_commit_never_discarded;
hidden byte P4_no_write_after_other_attempt_completed;
hidden byte P5_completed_output_never_discarded;

/* ------------------------------------------------------------- helpers */

inline pc(c) {              /* print a commit id */
  if
  :: c == A -> printf("A")
  :: c == F -> printf("F")
  :: c >= 2 && c < 5 -> printf("C%d", c - 2)
  :: c >= 5 -> printf("m%d", c - 5)
  fi
}

inline ps(s) {              /* print a Conductor status */
  if
  :: s == NONE -> printf("-")
  :: s == SCHEDULED -> printf("SCHEDULED")
  :: s == IN_PROGRESS -> printf("IN_PROGRESS")
  :: s == COMPLETED -> printf("COMPLETED")
  :: s == FAILED -> printf("FAILED")
  :: s == TIMED_OUT -> printf("TIMED_OUT")
  fi
}

inline show_chain() {
  printf("      branch: A");
  shp = 0;
  do
  :: shp < clen -> printf(" <- "); pc(chain[shp]); shp++
  :: else -> break
  od;
  printf("   conductor:");
  shp = 0;
  do
  :: shp < N -> printf(" a%d=", shp); ps(st[shp]); shp++
  :: else -> break
  od;
  printf("\n")
}

inline onchain(c) {         /* onc := c is on the first-parent chain (A always is) */
  onc = (c == A);
  sx = 0;
  do
  :: sx < clen -> onc = onc || chain[sx] == c; sx++
  :: else -> break
  od
}

inline count_pubs() {       /* snp := publications of this task on the chain */
  snp = 0;
  sx = 0;
  do
  :: sx < clen -> snp = snp + (ISPUB(chain[sx]) -> 1 : 0); sx++
  :: else -> break
  od
}

inline check_after_reset() {  /* P3 and P5, after every hard reset */
#if (PROPS & 4)
  if
  :: fappended ->
       onchain(F);
       P3_foreign_commit_never_discarded = onc;
       assert(P3_foreign_commit_never_discarded)
  :: else -> skip
  fi;
#endif
#if (PROPS & 16)
  if
  :: winner != NOBODY ->
       onchain(outp);
       P5_completed_output_never_discarded = onc;
       assert(P5_completed_output_never_discarded)
  :: else -> skip
  fi;
#endif
  skip
}

inline check_p4(me) {       /* at every fenced write of attempt `me` */
#if (PROPS & 8)
  P4_no_write_after_other_attempt_completed = (winner == NOBODY || winner == me);
  assert(P4_no_write_after_other_attempt_completed);
#endif
  skip
}

inline append(c) {          /* a new commit c on top of the current head */
  assert(clen < CAP);
  par[c] = HEAD;
  chain[clen] = c;
  clen++
}

inline set_chain(x) {       /* hard reset: the branch becomes x's first-parent chain */
  su = x;
  sv = 0;
  do
  :: su != A -> sv++; su = par[su]
  :: else -> break
  od;
  assert(sv <= CAP);
  sx = 0;
  do
  :: sx < CAP -> chain[sx] = 0; sx++
  :: else -> break
  od;
  clen = sv;
  su = x;
  do
  :: sv > 0 -> chain[sv - 1] = su; su = par[su]; sv--
  :: else -> break
  od;
  check_after_reset()
}

/* crash point between two steps: the worker may stop for ever (T:crash) */
#ifdef NO_CRASH
#define CP skip
#else
#define CP if :: skip :: atomic { nalive--; printf("  a%d: CRASH\n", i); goto dead } fi
#endif

/* FENCE(i): the attempt must still be IN_PROGRESS, else it ends as stale */
#define FENCE if :: st[i] != IN_PROGRESS -> goto stale \
                 :: else -> printf("  a%d: fence: still IN_PROGRESS\n", i) fi

/* a fenced write.  V2: fence and write are one atomic step;
   FENCE_WINDOW: two steps; OLD_RULE: no fence before the write */
#if defined(OLD_RULE)
#define MOVE_BEGIN atomic {
#elif defined(FENCE_WINDOW)
#define MOVE_BEGIN FENCE; atomic {
#else
#define MOVE_BEGIN atomic { FENCE;
#endif
#define MOVE_END }

/* RESET_WINDOW: close the atomic step between the head check and the reset */
#ifdef RESET_WINDOW
#define RESET_GAP } atomic {
#else
#define RESET_GAP
#endif

/* fenced check-and-reset of attempt i: if head == expect, hard reset to target.
   V2: fence + head check + reset in one step.  RESET_WINDOW: the head check is
   its own step and the fence stays next to the reset (only the lakeFS-side
   window opens).  FENCE_WINDOW: the fence is its own step. */
inline fenced_reset(expect, target) {
#ifdef RESET_WINDOW
  atomic { ok = (HEAD == expect);                       /* T:reset_check */
           printf("  a%d: head is ", i); pc(HEAD); printf("\n") };
  MOVE_BEGIN                                            /* T:fence_reset */
#else
  MOVE_BEGIN                                            /* T:fence_reset */
    ok = (HEAD == expect);                              /* T:reset_check */
#endif
    if
    :: ok ->                                            /* T:reset_do */
         printf("  a%d: hard reset to ", i); pc(target); printf("\n");
         check_p4(i);
         set_chain(target);
         show_chain()
    :: else -> printf("  a%d: head moved, no reset\n", i)
    fi
  MOVE_END
}

/* unfenced check-and-reset: rollback of the attempt's own merge commit */
inline own_reset(expect, target) {
  atomic {
    ok = (HEAD == expect);                              /* T:own_reset_check */
  RESET_GAP
    if
    :: ok ->                                            /* T:own_reset_do */
         printf("  a%d: roll back own ", i); pc(expect); printf(" (reset to "); pc(target);
         printf(")\n");
         set_chain(target);
         show_chain()
    :: else -> printf("  a%d: own commit no longer the head, left in place\n", i)
    fi
  }
}

/* ---------------------------------------------------------------- worker */

proctype worker(byte i) {
  byte H;                   /* head read in step 2a                      */
  byte X;                   /* output ref                                */
  byte rounds;              /* decision loop rounds used                 */
  bool changes;             /* publish path (true) or no-op path (false) */
  bool ok;                  /* result of a check-and-reset               */

  if                                                      /* T:choose */
  :: changes = true;  printf("  a%d: starts, has changes (C%d staged, parent A)\n", i, i)
  :: changes = false; printf("  a%d: starts, no changes (no-op)\n", i)
  fi;
  CP;
  FENCE;                                                  /* T:fence_start */
  CP;

loop:
  if
  :: rounds == MAXROUNDS -> goto fail                     /* T:rounds_exhausted */
  :: else -> atomic { rounds++; H = HEAD;                 /* T:read_head */
               printf("  a%d: reads head ", i); pc(H); printf("\n") }
  fi;
  CP;
#ifndef OLD_RULE
  if
  :: H == A && !changes -> X = A; goto complete           /* T:noop_head_is_A */
  :: H == A && changes -> goto merge                      /* T:head_is_A */
  :: ISPUB(H) && OWNER(H) == i -> goto own                /* T:head_is_own */
  :: ISPUB(H) && OWNER(H) != i -> goto other              /* T:head_is_other */
  :: else -> goto fail                                    /* T:head_foreign */
  fi;
#else
  if
  :: H == A && !changes -> X = A; goto complete           /* T:noop_head_is_A */
  :: H == A && changes -> goto merge                      /* T:head_is_A */
  :: ISPUB(H) && par[H] == A ->                           /* T:old_same_task_child_of_A */
       X = (changes -> C(i) : A);
       fenced_reset(H, X);                                /* T:old_reset (unfenced) */
       if
       :: ok -> goto complete
       :: else -> goto fail
       fi
  :: else -> goto fail                                    /* T:head_foreign */
  fi;
#endif

merge:
  MOVE_BEGIN                                              /* T:fence_merge */
    printf("  a%d: merge m%d onto ", i, i); pc(HEAD); printf("\n");
    check_p4(i);
    append(M(i));                                         /* T:merge */
    show_chain()
  MOVE_END;
  if
  :: skip
  :: printf("  a%d: merge answer lost\n", i);             /* T:merge_answer_lost */
#ifdef OLD_RULE
     goto fail
#else
     goto loop
#endif
  fi;
  CP;
  if
  :: par[M(i)] == A -> X = M(i); goto complete            /* T:postmerge_parent_is_A */
  :: else -> own_reset(M(i), par[M(i)]); goto fail        /* T:postmerge_rollback */
  fi;

#ifndef OLD_RULE
own:
  if
  :: par[H] == A -> X = H; goto complete                  /* T:own_complete */
  :: else -> own_reset(H, par[H]); goto fail              /* T:own_rollback */
  fi;

other:
  if
  :: OWNER(H) < i && ABANDONED(OWNER(H)) -> skip          /* T:read_owner_abandoned */
  :: else ->                                              /* T:read_owner_not_abandoned */
       printf("  a%d: head is a publication of a%d, not proven abandoned\n", i, OWNER(H));
       goto stale
  fi;
  CP;
  if
  :: par[H] == A ->                                       /* T:reset_abandoned */
       X = (changes -> C(i) : A);
       fenced_reset(H, X);
       if
       :: ok -> goto complete
       :: else -> goto loop
       fi
  :: else ->                                              /* T:rollback_abandoned */
       fenced_reset(H, par[H]);
       goto loop
  fi;
#endif

complete:
  CP;                       /* a crash here == the SDK dropped the update */
  atomic {                                                /* T:report_completed */
    printf("  a%d: reports COMPLETED(", i); pc(X); printf(")");
    if
    :: st[i] == IN_PROGRESS ->
         printf(" -> accepted\n");
         st[i] = COMPLETED;
         winner = i;
         outp = X;
#if (PROPS & 1)
         count_pubs();
         onchain(X);
         P1_completed_output_is_sole_publication_on_branch =
             (X == A && snp == 0) || (X != A && ISPUB(X) && OWNER(X) == i && onc && snp == 1);
         assert(P1_completed_output_is_sole_publication_on_branch);
#endif
         skip
    :: else -> printf(" -> ignored (no longer IN_PROGRESS)\n")
    fi;
    show_chain();
    nalive--
  };
  goto dead;

stale:                                                    /* T:stale */
  printf("  a%d: stale\n", i);
fail:
  atomic {                                                /* T:report_failed */
    printf("  a%d: reports FAILED", i);
    if
    :: st[i] == IN_PROGRESS -> st[i] = FAILED; printf(" -> accepted\n")
    :: else -> printf(" -> ignored\n")
    fi;
    nalive--
  };
dead:
  skip
}

/* ------------------------------------------------------------- Conductor */

proctype conductor() {
  byte cur;                 /* the latest attempt */
  do
  :: atomic { st[cur] == IN_PROGRESS -> st[cur] = TIMED_OUT;   /* T:timeout */
              printf("  conductor: a%d TIMED_OUT\n", cur) }
  :: atomic { ABANDONED(cur) && cur < N - 1 ->                 /* T:retry */
              cur++; st[cur] = IN_PROGRESS; nalive++;
              printf("  conductor: retry a%d IN_PROGRESS\n", cur);
              run worker(cur) }
  :: TASK_FINISHED -> break                                    /* T:task_finished */
  od
}

/* ------------------------------------------------------- foreign writer */

proctype foreign() {
  if
  :: atomic { printf("  foreign: commit F onto "); pc(HEAD); printf("\n");
              append(F); fappended = true; fdone = true;       /* T:foreign_append */
              show_chain() }
  :: fdone = true                                              /* T:foreign_none */
  fi
}

/* ------------------------------------- init, reconciler, final properties */

init {
  byte H;
  bool ok;

  atomic {
    st[0] = IN_PROGRESS;
    nalive = 1;
    printf("  conductor: a0 IN_PROGRESS; branch: A\n");
    run worker(0);
    run conductor();
#ifdef NO_FOREIGN
    fdone = true
#else
    run foreign()
#endif
  }

  /* reconciler (perago gc --lakefs), once the task finished and every attempt
     process ended */
  (TASK_FINISHED && nalive == 0);                              /* T:reconciler_start */
  do
  :: atomic { H = HEAD;                                        /* T:rec_read_head */
              printf("  reconciler: head "); pc(H); printf("\n") };
     if
     :: ISPUB(H) && st[OWNER(H)] != COMPLETED ->               /* T:rec_reset */
          atomic {
            ok = (HEAD == H);
          RESET_GAP
            if
            :: ok -> printf("  reconciler: reset to "); pc(par[H]); printf("\n");
                     set_chain(par[H]);
                     show_chain()
            :: else -> skip
            fi
          }
     :: else -> break                                          /* T:rec_done */
     fi
  od;

  fdone;                                                       /* T:final */
  d_step {
    assert(TASK_FINISHED && nalive == 0);
    printf("  final: "); 
    if
    :: winner != NOBODY -> printf("task COMPLETED by a%d, output ", winner); pc(outp)
    :: else -> printf("task terminally FAILED")
    fi;
    printf("\n");
    show_chain();
    count_pubs();
    if
    :: winner != NOBODY && outp == A ->
         P2_final_branch_matches_task_outcome = (snp == 0)
    :: winner != NOBODY && outp != A ->
         onchain(outp);
         P2_final_branch_matches_task_outcome = (onc && snp == 1)
    :: else ->              /* terminally failed: publications only under F */
         P2_final_branch_matches_task_outcome = true;
         seen = false;
         sx = clen;
         do
         :: sx > 0 ->
              sx--;
              seen = seen || chain[sx] == F;
              P2_final_branch_matches_task_outcome =
                  P2_final_branch_matches_task_outcome && (seen || !ISPUB(chain[sx]))
         :: else -> break
         od
    fi;
#if (PROPS & 2)
    assert(P2_final_branch_matches_task_outcome);
#endif
    skip
  }
}
