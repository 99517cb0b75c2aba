/** The subset of Nest's LoggerService the libraries need; Nest's Logger satisfies it. */
export interface Logger {
  log(message: string): void;
  warn(message: string): void;
  error(message: string, stack?: string): void;
}

export const silentLogger: Logger = {
  log: () => {},
  warn: () => {},
  error: () => {},
};
