/** A fenced code block of a Markdown file. */
export interface CodeBlock {
  /** First word of the info string: "ts", "sh", "yaml" ... */
  lang: string;
  /** The rest of the info string, split on spaces: e.g. ["compile-only"]. */
  flags: string[];
  code: string;
  /** 1-based line of the opening fence. */
  line: number;
  /** The nearest heading above the block (any level), without the #s. */
  heading: string;
  /** Every heading above the block from level 1 down, e.g. ["Flame for TypeScript", "Connect"]. */
  headings: string[];
}

const fencePattern = /^(`{3,}|~{3,})\s*(.*)$/;
const headingPattern = /^(#{1,6})\s+(.*?)\s*#*\s*$/;

/**
 * The fenced code blocks of a Markdown text, in order. Only fences that start
 * a line are recognised (no indented fences); a block ends at a fence of the
 * same character at least as long as the opening one.
 */
export function codeBlocks(markdown: string): CodeBlock[] {
  const lines = markdown.split(/\r?\n/);
  const blocks: CodeBlock[] = [];
  const headings: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] as string;
    const heading = headingPattern.exec(line);
    if (heading) {
      const level = (heading[1] as string).length;
      headings.length = level - 1;
      headings[level - 1] = heading[2] as string;
      continue;
    }
    const open = fencePattern.exec(line);
    if (!open) continue;
    const fence = open[1] as string;
    const [lang = "", ...flags] = (open[2] as string).trim().split(/\s+/);
    const body: string[] = [];
    let j = i + 1;
    for (; j < lines.length; j++) {
      const l = lines[j] as string;
      if (closes(l, fence)) break;
      body.push(l);
    }
    if (j >= lines.length) throw new Error(`unclosed code fence at line ${i + 1}`);
    const present = headings.filter((h) => h !== undefined);
    blocks.push({
      lang,
      flags: flags.filter((f) => f !== ""),
      code: `${body.join("\n")}\n`,
      line: i + 1,
      heading: present[present.length - 1] ?? "",
      headings: present,
    });
    i = j;
  }
  return blocks;
}

function closes(line: string, fence: string): boolean {
  const trimmed = line.trimEnd();
  const char = fence[0] as string;
  return trimmed.length >= fence.length && trimmed === char.repeat(trimmed.length);
}
