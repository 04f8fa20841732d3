export function rng(seed: number): () => number;
export function blob(id: number, version: number, size: number): Buffer;
export interface Op {
  id: number;
  conn: number;
  payload: string;
  size: number;
  update: { target: number; size: number } | undefined;
  del: number | undefined;
  counter: string;
  create: string | undefined;
  drop: string | undefined;
}
export function plan(seed: number, id: number): Op;
export const SCHEMA: string;
export function apply(h: unknown, seed: number, id: number): void;
export type Row = [number, number, string, Buffer];
export interface State {
  lastId: number;
  log: Row[];
  counters: [string, number][];
  tables: Record<string, [number, string][]>;
}
export function oracle(seed: number, k: number): State;
