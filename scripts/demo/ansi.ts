// The few terminal escape sequences the demo's live chart uses, and the width of text
// that contains them. Every glyph the chart draws (block elements, '·', '■') is one
// column wide, so the visible width is the length without the escape sequences.

export const HIDE_CURSOR = '\x1b[?25l';
export const SHOW_CURSOR = '\x1b[?25h';
/** Erase from the cursor to the end of the line. */
export const CLEAR_LINE_RIGHT = '\x1b[K';
/** Erase from the cursor to the end of the screen. */
export const CLEAR_BELOW = '\x1b[J';
export const CLEAR_SCREEN = '\x1b[H\x1b[2J';
const RESET = '\x1b[0m';

/** To column 1, then `lines` lines up ("\x1b[0A" would move one line in some terminals). */
export function cursorUp(lines: number): string {
  return lines > 0 ? `\r\x1b[${lines}A` : '\r';
}

/** SGR styles by name; the chart asks for meanings, not codes. */
export const STYLE = {
  bold: '1',
  dim: '2',
  green: '32',
  yellow: '33',
  red: '31',
  magenta: '35',
  cyan: '96',
  brightYellow: '93',
  brightMagenta: '95',
  brightBlue: '94',
  brightGreen: '92',
  white: '97',
} as const;
export type StyleName = keyof typeof STYLE;

export type Paint = (style: StyleName | undefined, text: string) => string;

export const colorPaint: Paint = (style, text) => (style === undefined || text === '' ? text : `\x1b[${STYLE[style]}m${text}${RESET}`);
export const plainPaint: Paint = (_style, text) => text;

const ESCAPES = /\x1b\[[0-9;?]*[A-Za-z]/g;

export function visibleLength(text: string): number {
  return text.replace(ESCAPES, '').length;
}

export function padEnd(text: string, width: number): string {
  return text + ' '.repeat(Math.max(0, width - visibleLength(text)));
}

export function padStart(text: string, width: number): string {
  return ' '.repeat(Math.max(0, width - visibleLength(text))) + text;
}

/**
 * At most `width` visible columns of `text`, escape sequences kept: a line longer than the
 * terminal would wrap, and the redraw counts lines, so every line must fit.
 */
export function fit(text: string, width: number): string {
  if (visibleLength(text) <= width) return text;
  const escapeAt = /\x1b\[[0-9;?]*[A-Za-z]/y;
  let out = '';
  let shown = 0;
  for (let i = 0; i < text.length; ) {
    escapeAt.lastIndex = i;
    const escape = escapeAt.exec(text);
    if (escape) {
      // Kept even past the cut, so a style opened before it is still closed.
      out += escape[0];
      i += escape[0].length;
      continue;
    }
    if (shown < width) {
      out += text[i];
      shown += 1;
    }
    i += 1;
  }
  return out;
}
