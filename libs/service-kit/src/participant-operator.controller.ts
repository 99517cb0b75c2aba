import { Controller, Get, Inject, NotFoundException, Param, Query } from '@nestjs/common';
import { ApiTags } from '@nestjs/swagger';
import { DataSource } from 'typeorm';
import { z } from 'zod';
import type { ProtocolConfig } from '@shop/two-phase-commit';
import { AdminOnly } from './admin-token.guard';
import { SERVICE_CONFIG } from './tokens';

/** One checkout as a participant recorded it (two-phase-commit's tpc_participant_transactions), and its messages out. */
export interface ParticipantTransactionRecord {
  transactionId: string;
  state: 'PREPARING' | 'PREPARED' | 'REFUSED' | 'COMMITTED' | 'ABORTED';
  voteReason: string | null;
  createdAt: string;
  preparedAt: string | null;
  decidedAt: string | null;
  lastInquiryAt: string | null;
  inquiries: number;
  /** Its votes, acks and inquiries still in its outbox (sent rows are pruned after retention). */
  messages: Array<{ type: string; createdAt: string; sentAt: string | null }>;
}

const InDoubtQuery = z.strictObject({ limit: z.coerce.number().int().min(1).max(1000).default(100) });

const RECORD_COLUMNS = `transaction_id AS "transactionId", state, vote_reason AS "voteReason", created_at AS "createdAt",
  prepared_at AS "preparedAt", decided_at AS "decidedAt", last_inquiry_at AS "lastInquiryAt", inquiries`;

/**
 * A participant's own record of the checkouts (the order service's console shows it beside the
 * coordinator's): one checkout, or those it holds prepared (a yes given, no decision heard yet),
 * oldest first, with when it asks the coordinator (its inquiry settings). Every participant has
 * these routes (`ServiceKitModule` mounts them for each participant of services.json).
 */
@ApiTags('operator')
@AdminOnly()
@Controller('operator/transactions')
export class ParticipantOperatorController {
  constructor(
    private readonly dataSource: DataSource,
    @Inject(SERVICE_CONFIG) private readonly config: Partial<ProtocolConfig>,
  ) {}

  @Get()
  async prepared(@Query({ schema: InDoubtQuery }) query: z.infer<typeof InDoubtQuery>) {
    const transactions = await this.dataSource.query<Array<Omit<ParticipantTransactionRecord, 'messages'>>>(
      `SELECT ${RECORD_COLUMNS} FROM tpc_participant_transactions
        WHERE state = 'PREPARED' ORDER BY prepared_at LIMIT $1`,
      [query.limit],
    );
    const { INQUIRY_AFTER_MS, INQUIRY_EVERY_MS, SWEEP_INTERVAL_MS } = this.config;
    return {
      inquiryAfterMs: INQUIRY_AFTER_MS,
      inquiryEveryMs: INQUIRY_EVERY_MS,
      sweepIntervalMs: SWEEP_INTERVAL_MS,
      count: transactions.length,
      transactions,
    };
  }

  @Get(':id')
  async one(@Param('id', { schema: z.uuid() }) id: string): Promise<ParticipantTransactionRecord> {
    const [record] = await this.dataSource.query<Array<Omit<ParticipantTransactionRecord, 'messages'>>>(
      `SELECT ${RECORD_COLUMNS} FROM tpc_participant_transactions WHERE transaction_id = $1`,
      [id],
    );
    if (!record) throw new NotFoundException(`no record of transaction ${id}`);
    // The outbox has no index on the transaction: a scan of what retention keeps, for one look.
    const messages = await this.dataSource.query<ParticipantTransactionRecord['messages']>(
      `SELECT message_type AS type, created_at AS "createdAt", sent_at AS "sentAt"
         FROM outbox WHERE body->>'transactionId' = $1 ORDER BY id`,
      [id],
    );
    return { ...record, messages };
  }
}
