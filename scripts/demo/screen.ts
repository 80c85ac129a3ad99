// Where the demo's output goes. On a terminal (LiveScreen) the chart is a region at the
// bottom, redrawn in place: each frame is one write that moves the cursor to the
// region's first line and overwrites it line by line (erasing only what is left over),
// so it never flickers; log lines (etcdctl commands, pool events) are printed above the
// region and scroll away as usual. Every line is cut to the terminal's width and the
// region to its height, because the redraw counts lines. Anywhere else (PlainScreen:
// CI, pipes, files) log lines are printed as they come and frames as plain blocks.
import {
  CLEAR_BELOW,
  CLEAR_LINE_RIGHT,
  CLEAR_SCREEN,
  cursorUp,
  fit,
  HIDE_CURSOR,
  SHOW_CURSOR,
} from './ansi.js';

export interface Screen {
  /** Whether frames are redrawn in place (and may use colors and block characters). */
  readonly live: boolean;
  /** Usable columns. */
  readonly width: number;
  log(line: string): void;
  frame(lines: readonly string[]): void;
  /** Leaves the last frame on screen and the cursor below it. */
  close(): void;
}

export class PlainScreen implements Screen {
  readonly live = false;
  readonly width = 120;
  readonly #out: NodeJS.WritableStream;

  constructor(out: NodeJS.WritableStream) {
    this.#out = out;
  }

  log(line: string): void {
    this.#out.write(`${line}\n`);
  }

  frame(lines: readonly string[]): void {
    this.#out.write(`${lines.join('\n')}\n`);
  }

  close(): void {}
}

export class LiveScreen implements Screen {
  readonly live = true;
  readonly #out: NodeJS.WriteStream;
  /** Lines the region takes on screen now; the cursor sits on the line below it. */
  #height = 0;
  #lines: readonly string[] = [];
  #resized = false;
  #closed = false;
  readonly #onResize = (): void => {
    this.#resized = true;
  };
  /** Never leave the user's terminal without a cursor, however the process ends. */
  readonly #onExit = (): void => {
    if (!this.#closed) this.#out.write(SHOW_CURSOR);
  };

  constructor(out: NodeJS.WriteStream) {
    this.#out = out;
    out.on('resize', this.#onResize);
    process.on('exit', this.#onExit);
    out.write(HIDE_CURSOR);
  }

  get width(): number {
    // One column short of the edge: a full-width line leaves some terminals in a pending wrap.
    return Math.max(40, (this.#out.columns ?? 100) - 1);
  }

  log(line: string): void {
    if (this.#closed) {
      this.#out.write(`${line}\n`);
      return;
    }
    this.#out.write(`${this.#toTop()}${CLEAR_BELOW}${line}\n${this.#draw(this.#lines)}`);
  }

  frame(lines: readonly string[]): void {
    if (this.#closed) return;
    this.#lines = lines;
    this.#out.write(this.#toTop() + this.#draw(lines));
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#out.off('resize', this.#onResize);
    process.off('exit', this.#onExit);
    this.#out.write(SHOW_CURSOR);
  }

  #toTop(): string {
    if (this.#resized) {
      // Lines drawn for the old width may have been rewrapped: start from a clean screen.
      this.#resized = false;
      this.#height = 0;
      return CLEAR_SCREEN;
    }
    return cursorUp(this.#height);
  }

  #draw(lines: readonly string[]): string {
    const rows = Math.max(3, (this.#out.rows ?? 40) - 1);
    let shown = lines;
    if (lines.length > rows) shown = [...lines.slice(0, rows - 1), `  … ${lines.length - rows + 1} more lines (make the terminal taller)`];
    const width = this.width;
    this.#height = shown.length;
    return `${shown.map((line) => `${fit(line, width)}${CLEAR_LINE_RIGHT}\n`).join('')}${CLEAR_BELOW}`;
  }
}
